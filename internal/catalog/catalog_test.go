package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

func open(t *testing.T, path string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunLifecycleAndRecovery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := open(t, path)
	id, err := c.UpsertJob(ctx, Job{Project: "shop", Service: "db", Name: "default", Strategy: "postgres", Schedule: "@daily"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.UpsertJob(ctx, Job{Project: "shop", Service: "db", Name: "default", Strategy: "postgres", Schedule: "0 3 * * *"})
	if again != id {
		t.Errorf("upsert of the same job gave id %d, want %d", again, id)
	}
	t0 := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	ok, _ := c.StartRun(ctx, Run{JobID: id, StartedAt: t0})
	if err := c.FinishRun(ctx, Run{ID: ok, Status: control.Success, FinishedAt: t0.Add(time.Minute), Size: 42, SHA256: "ab", ArtifactKey: "shop/db/x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishRun(ctx, Run{ID: ok, Status: control.Failed, FinishedAt: t0}); err == nil {
		t.Error("a finished run finished again")
	}
	if err := c.FinishRun(ctx, Run{ID: ok, Status: control.Running}); err == nil {
		t.Error("a run finished as running")
	}
	crashed, _ := c.StartRun(ctx, Run{JobID: id, StartedAt: t0.Add(time.Hour), ArtifactKey: "shop/db/y", StoppedContainer: "shop-db-1"})
	c.Close()

	// The sidecar restarts after a crash: the running run becomes interrupted, with the
	// container it had stopped.
	c2 := open(t, path)
	runs, err := c2.Interrupt(ctx, t0.Add(2*time.Hour))
	if err != nil || len(runs) != 1 || runs[0].ID != crashed || runs[0].StoppedContainer != "shop-db-1" || runs[0].ArtifactKey != "shop/db/y" || runs[0].Status != control.Interrupted ||
		runs[0].Cleanup != "shop/db/y" {
		t.Fatalf("Interrupt = %+v, %v", runs, err)
	}
	all, err := c2.Runs(ctx, id, 10)
	if err != nil || len(all) != 2 {
		t.Fatalf("Runs = %+v, %v", all, err)
	}
	if all[0].ID != crashed || all[0].Status != control.Interrupted || !strings.Contains(all[0].Error, "interrupted") || all[0].FinishedAt.IsZero() {
		t.Errorf("newest run: %+v", all[0])
	}
	if all[1].Status != control.Success || all[1].Size != 42 || all[1].ArtifactKey != "shop/db/x" || !all[1].StartedAt.Equal(t0) {
		t.Errorf("older run: %+v", all[1])
	}
	if again, _ := c2.Interrupt(ctx, time.Now()); len(again) != 0 {
		t.Errorf("second recovery found %d runs", len(again))
	}
	// Rebuilding from manifests adds a backup once, however often it runs.
	imp := Run{JobID: id, StartedAt: t0.Add(3 * time.Hour), FinishedAt: t0.Add(3*time.Hour + time.Second), Size: 7, SHA256: "cd", ArtifactKey: "shop/db/z"}
	for i, want := range []bool{true, false} {
		if added, err := c2.ImportRun(ctx, imp); err != nil || added != want {
			t.Errorf("import %d: added=%v err=%v, want %v", i, added, err, want)
		}
	}
	if added, _ := c2.ImportRun(ctx, Run{JobID: id, StartedAt: t0, FinishedAt: t0, ArtifactKey: "shop/db/x"}); added {
		t.Error("a backup the catalog already had as a run was imported again")
	}
	if n, err := c2.Counts(ctx, id); err != nil || n[control.Success] != 2 || n[control.Interrupted] != 1 || n[control.Failed] != 0 {
		t.Errorf("Counts = %v, %v", n, err)
	}
	failed, _ := c2.StartRun(ctx, Run{JobID: id, StartedAt: t0.Add(4 * time.Hour), ArtifactKey: "shop/db/w"})
	if err := c2.FinishRun(ctx, Run{ID: failed, Status: control.Failed, FinishedAt: t0.Add(5 * time.Hour), Error: "s3 down", Cleanup: "shop/db/w"}); err != nil {
		t.Fatal(err)
	}
	// The interrupted run's artifact is still to settle (a crash now would not forget it), and
	// the failed run's unfinished upload.
	if p, err := c2.PendingCleanups(ctx); err != nil || len(p) != 2 || p[0].Cleanup != "shop/db/y" || p[1].Cleanup != "shop/db/w" {
		t.Errorf("PendingCleanups = %+v, %v", p, err)
	}
	c2.CleanupDone(ctx, failed)
	c2.CleanupDone(ctx, crashed)
	if p, _ := c2.PendingCleanups(ctx); len(p) != 0 {
		t.Errorf("after CleanupDone: %+v", p)
	}
	if jobs, err := c2.Jobs(ctx); err != nil || len(jobs) != 1 || jobs[0].ID != id {
		t.Errorf("Jobs = %+v, %v", jobs, err)
	}
	if v, _ := c2.SchemaVersion(ctx); v != len(migrations) {
		t.Errorf("schema version %d, want %d", v, len(migrations))
	}
}

func TestRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := open(t, path)
	if _, err := c.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			id, err := c.UpsertJob(ctx, Job{Project: "p", Service: fmt.Sprint("s", w), Name: "default"})
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < 50; i++ {
				run, err := c.StartRun(ctx, Run{JobID: id, StartedAt: time.Now()})
				if err == nil {
					err = c.FinishRun(ctx, Run{ID: run, Status: control.Success, FinishedAt: time.Now()})
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	c.db.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE status = 'success'").Scan(&n)
	if n != 400 {
		t.Errorf("%d successful runs, want 400", n)
	}
}

func TestCopyIsAConsistentCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, filepath.Join(dir, "catalog.db"))
	id, _ := c.UpsertJob(ctx, Job{Project: "p", Service: "s", Name: "default"})
	run, _ := c.StartRun(ctx, Run{JobID: id, StartedAt: time.Now()})
	c.FinishRun(ctx, Run{ID: run, Status: control.Failed, FinishedAt: time.Now(), Error: "pg_dump exited with code 1"})
	copyPath := filepath.Join(dir, "copy.db")
	if err := c.Copy(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	cp := open(t, copyPath)
	runs, err := cp.Runs(ctx, id, 5)
	if err != nil || len(runs) != 1 || runs[0].Error != "pg_dump exited with code 1" {
		t.Errorf("copy holds %+v, %v", runs, err)
	}
	if err := c.Copy(ctx, copyPath); err == nil {
		t.Error("VACUUM INTO over an existing file succeeded")
	}
}

func TestOldRunsAreDropped(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	id, _ := c.UpsertJob(ctx, Job{Project: "p", Service: "s", Name: "default"})
	other, _ := c.UpsertJob(ctx, Job{Project: "p", Service: "t", Name: "default"})
	o, _ := c.StartRun(ctx, Run{JobID: other, StartedAt: time.Unix(0, 0)})
	c.FinishRun(ctx, Run{ID: o, Status: control.Success, FinishedAt: time.Unix(1, 0)})
	for i := 0; i < KeepRuns+5; i++ {
		r, _ := c.StartRun(ctx, Run{JobID: id, StartedAt: time.Unix(int64(i), 0)})
		if err := c.FinishRun(ctx, Run{ID: r, Status: control.Success, FinishedAt: time.Unix(int64(i), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := c.Counts(ctx, id); n[control.Success] != KeepRuns {
		t.Errorf("%d runs kept, want %d", n[control.Success], KeepRuns)
	}
	if runs, _ := c.Runs(ctx, id, 1); len(runs) != 1 || runs[0].StartedAt.Unix() != KeepRuns+4 {
		t.Errorf("newest run: %+v", runs)
	}
	if n, _ := c.Counts(ctx, other); n[control.Success] != 1 {
		t.Errorf("another job's runs were dropped: %v", n)
	}
}

func TestRestoresAndTheirRecovery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := open(t, path)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	done, _ := c.StartRestore(ctx, Restore{Project: "shop", Service: "files", ArtifactKey: "shop/files/a", Target: "default", Container: "abc", StartedAt: t0})
	if err := c.FinishRestore(ctx, Restore{ID: done, Status: control.Success, FinishedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	crashed, _ := c.StartRestore(ctx, Restore{Project: "shop", Service: "files", ArtifactKey: "shop/files/b", Target: "default", Container: "def", StartedAt: t0.Add(time.Hour)})
	// Crashed after it began to change its service: partly restored (if its strategy cannot
	// undo); the other crashed before (while its artifact was verified): as it was.
	applying, _ := c.StartRestore(ctx, Restore{Project: "shop", Service: "db", ArtifactKey: "shop/db/c", Target: "default", Container: "ghi", StartedAt: t0.Add(time.Hour)})
	if err := c.RestoreApplying(ctx, applying); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c2 := open(t, path)
	got, err := c2.InterruptRestores(ctx, t0.Add(2*time.Hour), func(string) bool { return true })
	if err != nil || len(got) != 2 || got[0].ID != crashed || got[0].Container != "def" || got[0].Status != control.Interrupted ||
		got[0].Partial || got[1].ID != applying || !got[1].Partial {
		t.Fatalf("InterruptRestores = %+v, %v", got, err)
	}
	all, _ := c2.Restores(ctx, 10)
	if len(all) != 3 || all[0].Status != control.Interrupted || !all[0].Partial || all[1].Partial || all[2].Status != control.Success || !all[2].FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("Restores = %+v", all)
	}
}

func TestStopsAndRecoveredRuns(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	a, err := c.Stopping(ctx, Stop{Container: "id-a", Name: "shop-db-1", StoppedAt: at, Operation: "backup shop/db/default"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stopping(ctx, Stop{Container: "id-b", Name: "shop-web-1", StoppedAt: at.Add(time.Second), Operation: "backup shop/db/default"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Started(ctx, a); err != nil {
		t.Fatal(err)
	}
	stops, err := c.Stops(ctx)
	if err != nil || len(stops) != 1 || stops[0].Container != "id-b" || !stops[0].StoppedAt.Equal(at.Add(time.Second)) {
		t.Errorf("Stops = %+v, %v", stops, err)
	}

	// A run interrupted after its manifest was written is a success after all.
	job, _ := c.UpsertJob(ctx, Job{Project: "shop", Service: "db", Name: ManualJob})
	id, _ := c.StartRun(ctx, Run{JobID: job, StartedAt: at, ArtifactKey: "shop/db/k"})
	if _, err := c.Interrupt(ctx, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Recovered(ctx, Run{ID: id, Size: 9, SHA256: "ef"}); err != nil {
		t.Fatal(err)
	}
	runs, jobs, err := c.ManualRuns(ctx, 5)
	if err != nil || len(runs) != 1 || runs[0].Status != control.Success || runs[0].Size != 9 || len(jobs) != 1 {
		t.Errorf("ManualRuns = %+v %+v, %v", runs, jobs, err)
	}
}

func TestRestoresAreBounded(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	for i := range KeepRestores + 20 {
		id, err := c.StartRestore(ctx, Restore{Project: "p", Service: "s", ArtifactKey: fmt.Sprint(i), Target: "default", Container: "x", StartedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.FinishRestore(ctx, Restore{ID: id, Status: control.Success, FinishedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Restores(ctx, 10*KeepRestores)
	if err != nil || len(all) != KeepRestores || all[0].ArtifactKey != fmt.Sprint(KeepRestores+19) {
		t.Errorf("%d restores kept (newest %q), want %d", len(all), all[0].ArtifactKey, KeepRestores)
	}
}

func TestLatestRestorePerService(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	for _, svc := range []string{"db", "files", "db"} {
		id, _ := c.StartRestore(ctx, Restore{Project: "p", Service: svc, ArtifactKey: svc, Target: "default", Container: "x", StartedAt: time.Now()})
		c.FinishRestore(ctx, Restore{ID: id, Status: control.Failed, Partial: svc == "files", FinishedAt: time.Now()})
	}
	got, err := c.LatestRestores(ctx, 10)
	if err != nil || len(got) != 2 || got[0].Service != "db" || got[1].Service != "files" || !got[1].Partial {
		t.Errorf("LatestRestores = %+v, %v", got, err)
	}
}

func TestVerifies(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := open(t, path)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	finish := func(v Verify) {
		t.Helper()
		id, err := c.StartVerify(ctx, Verify{Project: "shop", Service: "db", Job: "default", ArtifactKey: v.ArtifactKey, Target: "default", StartedAt: v.StartedAt})
		if err != nil {
			t.Fatal(err)
		}
		v.ID, v.FinishedAt = id, v.StartedAt.Add(time.Minute)
		if err := c.FinishVerify(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	finish(Verify{ArtifactKey: "a", StartedAt: t0, Status: control.Passed, Checks: 5})
	finish(Verify{ArtifactKey: "b", StartedAt: t0.Add(time.Hour), Status: control.Failed, Checks: 5, Failed: 1, Summary: "rows x: expected 3, found 0"})
	last, passed, err := c.LastVerifies(ctx, "shop", "db", "default")
	if err != nil || last.ArtifactKey != "b" || last.Status != control.Failed || last.Failed != 1 || passed.ArtifactKey != "a" || passed.Checks != 5 {
		t.Fatalf("LastVerifies = %+v, %+v, %v", last, passed, err)
	}
	if err := c.FinishVerify(ctx, Verify{ID: last.ID, Status: "maybe"}); err == nil {
		t.Error("a verify finished with an unknown status")
	}
	// One left running by a crash is interrupted at the next start.
	if _, err := c.StartVerify(ctx, Verify{Project: "shop", Service: "db", Job: "default", ArtifactKey: "c", StartedAt: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c2 := open(t, path)
	if n, err := c2.InterruptVerifies(ctx, t0.Add(3*time.Hour)); err != nil || n != 1 {
		t.Fatalf("InterruptVerifies = %d, %v", n, err)
	}
	all, _ := c2.Verifies(ctx, 10)
	if len(all) != 3 || all[0].Status != control.Interrupted || all[1].Status != control.Failed {
		t.Errorf("Verifies = %+v", all)
	}
	if last, _, _ := c2.LastVerifies(ctx, "shop", "other", "default"); last != nil {
		t.Errorf("a verify of another service: %+v", last)
	}
}
