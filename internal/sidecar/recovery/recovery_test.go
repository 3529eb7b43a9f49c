package recovery

import (
	"context"
	"errors"
	"io"
	"iter"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/target"
)

// downTarget is a target whose storage is unreachable until up is set.
type downTarget struct {
	up      bool
	removed []string
}

func (t *downTarget) err() error {
	if t.up {
		return nil
	}
	return errors.New("connection refused")
}
func (t *downTarget) Put(context.Context, string, io.Reader) (int64, error) { return 0, t.err() }
func (t *downTarget) Get(context.Context, string) (io.ReadCloser, error) {
	if err := t.err(); err != nil {
		return nil, err
	}
	return nil, target.ErrNotExist
}
func (t *downTarget) List(context.Context, string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) { yield(target.Object{}, t.err()) }
}
func (t *downTarget) Delete(context.Context, string) error { return t.err() }
func (t *downTarget) String() string                       { return "s3://test" }
func (t *downTarget) RemoveIncomplete(_ context.Context, key string) error {
	if err := t.err(); err != nil {
		return err
	}
	t.removed = append(t.removed, key)
	return nil
}

func TestFailedUploadIsCleanedUpOnceTheTargetAnswers(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tgt := &downTarget{}
	d := New(Options{Catalog: cat, Targets: map[string]target.Target{"offsite": tgt}, Log: slog.New(slog.DiscardHandler)})
	id, _ := cat.UpsertJob(ctx, catalog.Job{Project: "shop", Service: "db", Name: "default", Target: "offsite"})
	run, _ := cat.StartRun(ctx, catalog.Run{JobID: id, StartedAt: time.Now(), ArtifactKey: "shop/db/x.sql.zst"})
	cat.FinishRun(ctx, catalog.Run{ID: run, Status: control.Failed, FinishedAt: time.Now(), Error: "down", Cleanup: "shop/db/x.sql.zst"})

	d.settleAll(ctx, false) // still down: kept for later
	if p, _ := cat.PendingCleanups(ctx); len(p) != 1 || len(tgt.removed) != 0 {
		t.Fatalf("while down: pending %+v, removed %q", p, tgt.removed)
	}
	tgt.up = true
	d.settleAll(ctx, false)
	if p, _ := cat.PendingCleanups(ctx); len(p) != 0 || strings.Join(tgt.removed, " ") != "shop/db/x.sql.zst shop/db/x.sql.zst.chunks" {
		t.Fatalf("once up: pending %+v, removed %q", p, tgt.removed)
	}
}

// A failed container start at recovery is retried until it succeeds, and shown meanwhile.
func TestRecoveryRetriesUntilDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(Options{Log: slog.New(slog.DiscardHandler)})
	tries := 0
	d.add("start shop-db-1 (stopped by backup shop/db/default)", func(context.Context) error {
		if tries++; tries < 2 {
			return errors.New("no such network")
		}
		return nil
	}, errors.New("no such network"))
	if p := d.Pending(); len(p) != 1 || p[0] != "start shop-db-1 (stopped by backup shop/db/default) (last error: no such network)" {
		t.Fatalf("pending %q", p)
	}
	go d.Keep(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for len(d.Pending()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still pending after %d tries: %q", tries, d.Pending())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tries < 2 {
		t.Errorf("%d tries", tries)
	}
}

// Finishing an interrupted run is kept in the catalog, not only in memory: a sidecar killed
// again before its target answered still finishes the run after its next start.
func TestInterruptedRunIsFinishedAfterASecondCrash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	first, err := catalog.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := first.UpsertJob(ctx, catalog.Job{Project: "shop", Service: "db", Name: "default", Target: "offsite"})
	run, _ := first.StartRun(ctx, catalog.Run{JobID: id, StartedAt: time.Now(), ArtifactKey: "shop/db/x.sql.zst"})
	first.Close() // killed during the run

	tgt := &downTarget{}
	life := func() (*Recovery, *catalog.Catalog) {
		cat, err := catalog.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		d := New(Options{Catalog: cat, Targets: map[string]target.Target{"offsite": tgt}, Log: slog.New(slog.DiscardHandler)})
		if err := d.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return d, cat
	}
	d, cat := life() // the target is down: the run cannot be finished yet
	if p := d.Pending(); len(p) != 1 || !strings.Contains(p[0], "finish the interrupted run") {
		t.Fatalf("pending after the first restart: %q", p)
	}
	cat.Close() // killed again: what was pending in memory is gone

	tgt.up = true
	d, cat = life()
	defer cat.Close()
	if p := d.Pending(); len(p) != 0 {
		t.Errorf("pending after the second restart: %q", p)
	}
	if strings.Join(tgt.removed, " ") != "shop/db/x.sql.zst shop/db/x.sql.zst.chunks" {
		t.Errorf("removed %q, want the interrupted run's artifact and chunk list", tgt.removed)
	}
	if p, _ := cat.PendingCleanups(ctx); len(p) != 0 {
		t.Errorf("still to settle: %+v", p)
	}
	if runs, _ := cat.Runs(ctx, id, 5); len(runs) != 1 || runs[0].ID != run || runs[0].Status != control.Interrupted {
		t.Errorf("runs %+v", runs)
	}
}
