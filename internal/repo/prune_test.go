package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/repo/lock"
)

// pause makes a hook that blocks at point (its first occurrence) until released.
type pause struct {
	point   string
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newPause(point string) *pause {
	return &pause{point: point, reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pause) hook(ctx context.Context, point string) error {
	if point != p.point {
		return nil
	}
	first := false
	p.once.Do(func() { first = true; close(p.reached) })
	if first {
		<-p.release
	}
	return nil
}

// scenario: snapshot s0 of files x and y, s1 of y and z, s0 forgotten (x is garbage), and the
// packs of an aborted backup (unindexed garbage).
type scenario struct {
	e     *env
	src   string
	snaps []*Snapshot
	want  map[string]string // snapshot ID → source digest
}

func newScenario(t *testing.T) *scenario {
	ctx := context.Background()
	e := newEnv(t, true)
	sc := &scenario{e: e, src: filepath.Join(e.dir, "src"), want: map[string]string{}}
	r := e.open(nil)
	write(t, filepath.Join(sc.src, "x"), randomBytes(3<<20, 10))
	write(t, filepath.Join(sc.src, "y"), randomBytes(2<<20, 11))
	for i := range 30 {
		write(t, filepath.Join(sc.src, fmt.Sprintf("small/%02d", i)), randomBytes(40<<10, uint64(100+i)))
	}
	s0 := sc.backup(t, r)
	must(t, os.Remove(filepath.Join(sc.src, "x")))
	for i := range 22 { // the rest of their pack is garbage: rewritten by a prune
		must(t, os.Remove(filepath.Join(sc.src, fmt.Sprintf("small/%02d", i))))
	}
	write(t, filepath.Join(sc.src, "z"), randomBytes(2<<20, 12))
	sc.backup(t, r)
	must(t, r.Forget(ctx, s0.ID))
	sc.snaps, sc.want[s0.ID] = sc.snaps[1:], ""
	crashing := e.open(func(a *Access) {
		a.Hook = func(ctx context.Context, point string) error {
			if point == "backup.packs-uploaded" {
				return errors.New("crash before the index")
			}
			return nil
		}
	})
	w, err := crashing.NewWriter(ctx)
	must(t, err)
	must(t, w.AddFile("aborted", nodeFile(), strings.NewReader(string(randomBytes(3<<20, 13)))))
	if _, err := w.Commit(ctx, Snapshot{}); err == nil {
		t.Fatal("the crashing backup committed")
	}
	if len(sc.unindexed(t, r)) == 0 {
		t.Fatal("the aborted backup left no pack: the scenario proves nothing")
	}
	return sc
}

func (sc *scenario) backup(t *testing.T, r *Repo) *Snapshot {
	t.Helper()
	s, err := backupDir(context.Background(), r, sc.src, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.add(t, s)
	return s
}

func (sc *scenario) add(t *testing.T, s *Snapshot) {
	sc.snaps = append(sc.snaps, s)
	sc.want[s.ID] = dirHash(t, sc.src)
}

func (sc *scenario) unindexed(t *testing.T, r *Repo) []string {
	res, err := r.Check(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return res.Unindexed
}

// verify: Check reads every pack without a problem, and every snapshot restores exactly.
func (sc *scenario) verify(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	r := sc.e.open(nil)
	if _, err := r.Check(ctx, 1); err != nil {
		t.Fatalf("check: %v", err)
	}
	snaps, err := r.Snapshots(ctx)
	must(t, err)
	if len(snaps) != len(sc.snaps) {
		t.Fatalf("%d snapshots, want %d", len(snaps), len(sc.snaps))
	}
	for _, s := range snaps {
		tr, err := export(ctx, r, s)
		if err != nil {
			t.Fatalf("restoring %s: %v", short(s.ID), err)
		}
		if got := tarHash(t, tr); got != sc.want[s.ID] {
			t.Fatalf("snapshot %s restores to %s, want %s", short(s.ID), got, sc.want[s.ID])
		}
	}
}

// TestPrune removes the forgotten snapshot's data and the aborted backup's packs, and keeps
// everything a snapshot references.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(t)
	r := sc.e.open(nil)
	before := packCount(t, sc.e.target)
	res, err := r.Prune(ctx)
	must(t, err)
	if res.DeletedPacks == 0 || res.UnindexedPacks == 0 || res.RewrittenPacks == 0 || packCount(t, sc.e.target) >= before {
		t.Fatalf("prune deleted nothing: %+v", res)
	}
	if u := sc.unindexed(t, r); len(u) != 0 {
		t.Fatalf("unindexed packs after a prune: %v", u)
	}
	sc.verify(t)
	res, err = r.Prune(ctx)
	must(t, err)
	if res.DeletedPacks != 0 {
		t.Fatalf("a second prune deleted %d packs", res.DeletedPacks)
	}
	sc.verify(t)
}

var backupPoints = []string{"lock.shared.put", "backup.locked", "backup.pack-uploaded", "backup.packs-uploaded", "backup.index-written", "backup.snapshot-written"}
var prunePoints = []string{"lock.exclusive.put", "prune.locked", "prune.planned", "prune.rewritten", "prune.index-written", "prune.old-index-deleted", "prune.pack-deleted"}

// TestPruneDuringBackup: a backup paused at each of its steps; a prune then fails (backup
// in progress) and deletes nothing, a second backup runs beside it, both commit, and a prune
// after them keeps what they reference.
func TestPruneDuringBackup(t *testing.T) {
	for _, point := range backupPoints {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			sc := newScenario(t)
			write(t, filepath.Join(sc.src, "x"), randomBytes(3<<20, 10)) // the garbage's content again: dedup against it
			p := newPause(point)
			w1 := sc.e.open(func(a *Access) { a.Hook = p.hook })
			done := make(chan error, 1)
			var s1 *Snapshot
			go func() {
				var err error
				s1, err = backupDir(ctx, w1, sc.src, nil)
				done <- err
			}()
			<-p.reached
			before := packCount(t, sc.e.target)
			_, err := sc.e.open(nil).Prune(ctx)
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "backup") {
				t.Fatalf("prune during a backup: %v, want a backup-in-progress error", err)
			}
			if after := packCount(t, sc.e.target); after < before {
				t.Fatalf("the refused prune deleted %d packs", before-after)
			}
			sc.backup(t, sc.e.open(nil)) // a second backup beside the first
			close(p.release)
			must(t, <-done)
			sc.add(t, s1)
			_, err = sc.e.open(nil).Prune(ctx)
			must(t, err)
			sc.verify(t)
		})
	}
}

// TestBackupDuringPrune: a prune paused at each of its steps; a backup then fails (a prune
// is running) without leaving its lock; once the prune is done the backup works.
func TestBackupDuringPrune(t *testing.T) {
	for _, point := range prunePoints {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			sc := newScenario(t)
			write(t, filepath.Join(sc.src, "x"), randomBytes(3<<20, 10))
			p := newPause(point)
			pr := sc.e.open(func(a *Access) { a.Hook = p.hook })
			done := make(chan error, 1)
			go func() { _, err := pr.Prune(ctx); done <- err }()
			<-p.reached
			_, err := backupDir(ctx, sc.e.open(nil), sc.src, nil)
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "prune") {
				t.Fatalf("backup during a prune: %v, want a prune-is-running error", err)
			}
			locks, err := pr.Locks(ctx)
			must(t, err)
			if len(locks) != 1 || locks[0].Kind != lock.Exclusive {
				t.Fatalf("locks while the prune runs: %+v (the refused backup's must be gone)", locks)
			}
			close(p.release)
			must(t, <-done)
			sc.backup(t, sc.e.open(nil))
			sc.verify(t)
		})
	}
}

// failAt fails the nth hook call.
func failAt(n int, calls *[]string) func(context.Context, string) error {
	var mu sync.Mutex
	return func(ctx context.Context, point string) error {
		mu.Lock()
		defer mu.Unlock()
		*calls = append(*calls, point)
		if len(*calls) == n {
			return fmt.Errorf("simulated crash")
		}
		return nil
	}
}

// TestCrashEveryStep stops a backup, then a prune, at each step in turn: each time Check
// passes, every snapshot restores, and the next backup and prune work.
func TestCrashEveryStep(t *testing.T) {
	for _, op := range []string{"backup", "prune"} {
		for n := 1; ; n++ {
			var calls []string
			stopped := false
			t.Run(fmt.Sprintf("%s-%d", op, n), func(t *testing.T) {
				ctx := context.Background()
				sc := newScenario(t)
				write(t, filepath.Join(sc.src, "x"), randomBytes(3<<20, 10))
				write(t, filepath.Join(sc.src, "new"), randomBytes(2<<20, 20))
				r := sc.e.open(func(a *Access) { a.Hook = failAt(n, &calls) })
				var err error
				var s *Snapshot
				if op == "backup" {
					s, err = backupDir(ctx, r, sc.src, nil)
				} else {
					_, err = r.Prune(ctx)
				}
				if err == nil {
					stopped = true
					if s != nil {
						sc.add(t, s)
					}
				} else if !strings.Contains(err.Error(), "simulated crash") {
					t.Fatalf("stopped at %s: %v", calls[len(calls)-1], err)
				} else {
					t.Logf("stopped at %s", calls[len(calls)-1])
				}
				if err != nil && calls[len(calls)-1] == "backup.snapshot-written" {
					// Stopped after publishing: the snapshot is there, and whole.
					all, err := r.Snapshots(ctx)
					must(t, err)
					for _, x := range all {
						if _, ok := sc.want[x.ID]; !ok {
							sc.add(t, x)
						}
					}
				}
				if s == nil && op == "backup" && err == nil {
					t.Fatal("no snapshot")
				}
				sc.verify(t)
				sc.backup(t, sc.e.open(nil))
				_, err = sc.e.open(nil).Prune(ctx)
				must(t, err)
				sc.verify(t)
			})
			if stopped || t.Failed() {
				break
			}
		}
	}
}

// TestStaleLock: a lock left by a crashed process blocks a prune until it is stale.
func TestStaleLock(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(t)
	now := time.Now()
	clock := func() time.Time { return now }
	crashed := sc.e.open(func(a *Access) { a.Now = clock })
	l, err := crashed.locker().Acquire(ctx, lock.Shared)
	must(t, err)
	l.Stop() // the process died: no refresh, no release
	if _, err := sc.e.open(func(a *Access) { a.Now = clock }).Prune(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("prune beside a live lock: %v", err)
	}
	later := func() time.Time { return now.Add(lock.Stale + time.Minute) }
	if _, err := sc.e.open(func(a *Access) { a.Now = later }).Prune(ctx); err != nil {
		t.Fatalf("prune beside a stale lock: %v", err)
	}
	n, err := sc.e.open(func(a *Access) { a.Now = later }).RemoveStaleLocks(ctx, false)
	if err != nil || n != 1 {
		t.Fatalf("removed %d stale locks: %v", n, err)
	}
	sc.verify(t)
}

// TestHungBackup: a backup whose lock went unrefreshed so long that a prune may have ignored
// it publishes nothing; a refreshed one commits.
func TestHungBackup(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := sc.e.open(func(a *Access) { a.Now = clock })

	w, err := r.NewWriter(ctx)
	must(t, err)
	must(t, w.AddFile("late", nodeFile(), strings.NewReader("late data")))
	advance(lock.Stale - lock.RefreshEvery + time.Minute)
	if _, err := w.Commit(ctx, Snapshot{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("a hung backup's commit: %v, want ErrLocked", err)
	}
	sc.verify(t) // no new snapshot, check passes

	w, err = r.NewWriter(ctx)
	must(t, err)
	must(t, w.AddFile("late", nodeFile(), strings.NewReader("late data")))
	advance(20 * time.Minute)
	must(t, w.lock.Refresh(ctx))
	locks, err := r.Locks(ctx)
	must(t, err)
	if len(locks) != 1 || !locks[0].Refreshed.Equal(clock()) {
		t.Fatalf("after a refresh: %+v", locks)
	}
	advance(20 * time.Minute)
	s, err := w.Commit(ctx, Snapshot{})
	must(t, err)
	sc.snaps = append(sc.snaps, s)
	sc.want[s.ID] = "" // checked by Check only
	if _, err := r.Check(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
