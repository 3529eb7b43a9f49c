package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// recovery holds what is left to do after a crash — containers to start, partial uploads
// to remove — and retries it with backoff until done.
type recovery struct {
	r     *Runner
	mu    sync.Mutex
	tasks map[string]task // by description
	kick  chan struct{}
}

type task struct {
	do      func(ctx context.Context) error
	lastErr error
}

func newRecovery(r *Runner) *recovery {
	return &recovery{r: r, tasks: map[string]task{}, kick: make(chan struct{}, 1)}
}

// add queues a task to retry until it succeeds.
func (rc *recovery) add(desc string, do func(ctx context.Context) error, err error) {
	rc.mu.Lock()
	rc.tasks[desc] = task{do: do, lastErr: err}
	rc.mu.Unlock()
	rc.r.log.Error("recovery is not finished; retrying until it is", "task", desc, "error", err)
	select {
	case rc.kick <- struct{}{}:
	default:
	}
}

// Pending describes what recovery has still to do.
func (r *Runner) Pending() []string {
	rc := r.recovery
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for desc, t := range rc.tasks {
		out = append(out, fmt.Sprintf("%s (last error: %v)", desc, t.lastErr))
	}
	sort.Strings(out)
	return out
}

// KeepRecovering retries the pending recovery tasks, backing off from 2 s to a minute,
// until ctx ends.
func (r *Runner) KeepRecovering(ctx context.Context) {
	rc := r.recovery
	delay := 2 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-rc.kick:
		case <-time.After(delay):
		}
		rc.mu.Lock()
		tasks := make(map[string]task, len(rc.tasks))
		for k, v := range rc.tasks {
			tasks[k] = v
		}
		rc.mu.Unlock()
		if len(tasks) == 0 {
			delay = time.Minute
			continue
		}
		failed := false
		for desc, t := range tasks {
			err := t.do(ctx)
			rc.mu.Lock()
			if err == nil {
				delete(rc.tasks, desc)
				r.log.Info("recovery finished a task", "task", desc)
			} else {
				t.lastErr = err
				rc.tasks[desc] = t
				failed = true
			}
			rc.mu.Unlock()
		}
		if failed {
			delay = min(delay*2, time.Minute)
		} else {
			delay = 2 * time.Second
		}
	}
}

// Recover finishes what a crash (kill -9, OOM, power loss) left: restores and runs still
// "running" in the catalog become "interrupted"; every container an operation had stopped
// is started again (unless it was stopped by someone else before); unfinished artifacts are
// removed — but a run whose manifest was written before the crash is complete, and recorded
// as the success it was. What cannot be done now (a container that does not start, a target
// that does not answer) is retried until it is (KeepRecovering), and shown by Pending.
func (r *Runner) Recover(ctx context.Context) error {
	cat := r.opts.Catalog
	restores, err := cat.InterruptRestores(ctx, time.Now(), func(name string) bool {
		s, err := strategy.New(name, strategy.Options{})
		if err != nil {
			return true
		}
		a, ok := s.(strategy.Atomicity)
		return ok && a.Interrupted() != ""
	})
	if err != nil {
		return err
	}
	for _, rs := range restores {
		r.opts.Notifier.Notify("", notify.Event{Kind: "recovery", Project: rs.Project, Service: rs.Service, Failed: true, Key: rs.ArtifactKey,
			Error: "a restore was interrupted by a crash of the sidecar: restore again"})
		if rs.Partial {
			r.log.Error("a restore was interrupted by a crash of the sidecar and its service may be partly restored: restore again",
				"key", rs.ArtifactKey, "service", rs.Project+"/"+rs.Service, "strategy", rs.Strategy)
		} else {
			r.log.Warn("a restore was interrupted by a crash of the sidecar; the service is as it was before it (the restore was rolled back): restore again",
				"key", rs.ArtifactKey, "service", rs.Project+"/"+rs.Service, "strategy", rs.Strategy)
		}
	}
	if n, err := cat.InterruptVerifies(ctx, time.Now()); err != nil {
		return err
	} else if n > 0 {
		r.log.Warn("verifies were interrupted by a crash of the sidecar; their scratch copies are removed now", "verifies", n)
	}
	// Scratch copies of this sidecar's earlier life (killed mid-verify), and expired ones.
	if r.opts.API == nil {
		// No Engine (tests of the catalog's recovery alone).
	} else if n, err := scratch.Reap(ctx, r.opts.API, scratch.Stale(r.opts.Owner, time.Now()), r.log); err != nil {
		r.log.Warn("could not remove every leftover scratch container", "error", err)
	} else if n > 0 {
		r.log.Info("removed leftover scratch containers of interrupted verifies", "count", n)
	}
	runs, err := cat.Interrupt(ctx, time.Now())
	if err != nil {
		return err
	}
	jobs, err := cat.Jobs(ctx)
	if err != nil {
		return err
	}
	targetOf := map[int64]string{}
	jobOf := map[int64]catalog.Job{}
	for _, j := range jobs {
		targetOf[j.ID], jobOf[j.ID] = j.Target, j
	}
	for _, run := range runs {
		log := r.log.With("run", run.ID, "started", run.StartedAt)
		log.Warn("a run was interrupted by a crash of the sidecar")
		j := jobOf[run.JobID]
		r.opts.Notifier.Notify("", notify.Event{Kind: "recovery", Project: j.Project, Service: j.Service, Job: j.Name, Target: j.Target, Failed: true,
			Error: fmt.Sprintf("a run started %s was interrupted by a crash of the sidecar", run.StartedAt.Format(time.RFC3339))})
		for _, id := range strings.Split(run.StoppedContainer, ",") { // catalogs before schema 5
			if id != "" {
				r.restart(ctx, catalog.Stop{Container: id, Name: id, Operation: "an interrupted run"})
			}
		}
		if run.ArtifactKey == "" {
			continue
		}
		tgtName := targetOf[run.JobID]
		tgt, ok := r.opts.Targets[tgtName]
		if !ok {
			log.Warn("the interrupted run's target is no longer defined; cannot clean up its artifact", "target", tgtName, "key", run.ArtifactKey)
			continue
		}
		key := run.ArtifactKey
		finish := func(ctx context.Context) error { return r.settle(ctx, tgt, run, key) }
		if err := finish(ctx); err != nil {
			r.recovery.add(fmt.Sprintf("finish the interrupted run %d (%s)", run.ID, key), finish, err)
		}
	}
	stops, err := cat.Stops(ctx)
	if err != nil {
		return err
	}
	for _, s := range stops {
		r.restart(ctx, s)
	}
	r.recovery.cleanUp(ctx)
	return nil
}

// settle decides an interrupted run: complete (its manifest exists) or to be removed.
func (r *Runner) settle(ctx context.Context, tgt target.Target, run catalog.Run, key string) error {
	m, err := pipeline.ReadManifest(ctx, tgt, key)
	switch {
	case err == nil:
		if err := r.opts.Catalog.Recovered(ctx, catalog.Run{ID: run.ID, Size: m.Size, SHA256: m.SHA256}); err != nil {
			return err
		}
		r.log.Info("the interrupted run had finished writing its backup; recorded as a success", "run", run.ID, "key", key, "size", m.Size)
		return nil
	case !errors.Is(err, target.ErrNotExist):
		return fmt.Errorf("checking the interrupted run's artifact %s: %w", key, err)
	}
	if err := errors.Join(tgt.Delete(ctx, key), target.RemoveIncomplete(ctx, tgt, key)); err != nil {
		return fmt.Errorf("removing the interrupted run's partial artifact %s: %w", key, err)
	}
	r.log.Info("removed the interrupted run's partial artifact", "run", run.ID, "key", key)
	return nil
}

// restart starts a container an interrupted operation had stopped, now or by retrying.
func (r *Runner) restart(ctx context.Context, s catalog.Stop) {
	do := func(ctx context.Context) error {
		started, err := containers.Restart(ctx, r.opts.API, s.Container, s.StoppedAt)
		if err != nil {
			return err
		}
		if started {
			msg := "started a container the interrupted run had stopped"
			if strings.HasPrefix(s.Operation, "restore") {
				msg = "started the container of an interrupted restore"
			}
			r.log.Info(msg, "container", s.Name, "operation", s.Operation)
		}
		if s.ID != 0 {
			return r.opts.Catalog.Started(ctx, s.ID)
		}
		return nil
	}
	if err := do(ctx); err != nil {
		r.recovery.add(fmt.Sprintf("start %s (stopped by %s)", s.Name, s.Operation), do, err)
	}
}

// cleanUp removes the unfinished uploads that failed runs left because the target could not
// be reached then; what still fails is tried again later.
func (rc *recovery) cleanUp(ctx context.Context) {
	r := rc.r
	cat := r.opts.Catalog
	pending, err := cat.PendingCleanups(ctx)
	if err != nil || len(pending) == 0 {
		return
	}
	jobs, err := cat.Jobs(ctx)
	if err != nil {
		return
	}
	targetOf := map[int64]string{}
	for _, j := range jobs {
		targetOf[j.ID] = j.Target
	}
	for _, run := range pending {
		tgt, ok := r.opts.Targets[targetOf[run.JobID]]
		if ok {
			if rc, err := tgt.Get(ctx, artifact.ManifestKey(run.Cleanup)); err == nil {
				rc.Close() // a complete backup after all: nothing to clean
			} else if !errors.Is(err, target.ErrNotExist) {
				continue // the target still does not answer
			} else if err := errors.Join(target.RemoveIncomplete(ctx, tgt, run.Cleanup), tgt.Delete(ctx, run.Cleanup)); err != nil {
				r.log.Warn("cannot remove a failed run's unfinished upload yet", "key", run.Cleanup, "error", err)
				continue
			} else {
				r.log.Info("removed a failed run's unfinished upload", "key", run.Cleanup)
			}
		}
		_ = cat.CleanupDone(ctx, run.ID)
	}
}
