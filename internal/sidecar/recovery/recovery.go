// Package recovery finishes what a crash of the sidecar left (Recover): interrupted runs,
// restores and verifies recorded as such, the containers they had stopped started again, the
// unfinished uploads removed or a finished one recorded as the success it was; and what
// cannot be done yet it retries until done (Keep), shown meanwhile (Pending).
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Options are what recovery works with.
type Options struct {
	Catalog *catalog.Catalog
	// API starts containers and reaps scratch copies (nil: none, in tests of the catalog's
	// recovery alone).
	API     scratch.Engine
	Owner   string // labels this sidecar's scratch copies (scratch.SidecarOwner)
	Targets map[string]target.Target
	// Keys are the keys a manifest at an interrupted run's key must be signed with.
	Keys     *artifact.Keyring
	Notifier *notify.Notifier
	Log      *slog.Logger
}

// Recovery holds what is left to do after a crash — containers to start, partial uploads
// to remove — and retries it with backoff until done.
type Recovery struct {
	opts  Options
	log   *slog.Logger
	mu    sync.Mutex
	tasks map[string]task // by description
	kick  chan struct{}
}

type task struct {
	do      func(ctx context.Context) error
	lastErr error
}

// New returns the recovery of a sidecar that works with opts.
func New(opts Options) *Recovery {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recovery{opts: opts, log: log, tasks: map[string]task{}, kick: make(chan struct{}, 1)}
}

// add queues a task to retry until it succeeds.
func (rc *Recovery) add(desc string, do func(ctx context.Context) error, err error) {
	rc.mu.Lock()
	rc.tasks[desc] = task{do: do, lastErr: err}
	rc.mu.Unlock()
	rc.log.Error("recovery is not finished; retrying until it is", "task", desc, "error", err)
	select {
	case rc.kick <- struct{}{}:
	default:
	}
}

// Pending describes what recovery has still to do.
func (rc *Recovery) Pending() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for desc, t := range rc.tasks {
		out = append(out, fmt.Sprintf("%s (last error: %v)", desc, t.lastErr))
	}
	sort.Strings(out)
	return out
}

// Keep retries the pending recovery tasks, backing off from 2 s to a minute, until ctx ends.
func (rc *Recovery) Keep(ctx context.Context) {
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
				rc.log.Info("recovery finished a task", "task", desc)
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
// that does not answer) is retried until it is (Keep), and shown by Pending.
func (rc *Recovery) Recover(ctx context.Context) error {
	cat := rc.opts.Catalog
	restores, err := cat.InterruptRestores(ctx, time.Now(), func(name string) bool {
		s, err := strategies.New(name, strategy.Options{})
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
		rc.opts.Notifier.Notify("", notify.Event{Kind: "recovery", Project: rs.Project, Service: rs.Service, Failed: true, Key: rs.ArtifactKey,
			Error: "a restore was interrupted by a crash of the sidecar: restore again"})
		if rs.Partial {
			rc.log.Error("a restore was interrupted by a crash of the sidecar and its service may be partly restored: restore again",
				"key", rs.ArtifactKey, "service", artifact.ServiceName(rs.Project, rs.Service, ""), "strategy", rs.Strategy)
		} else {
			rc.log.Warn("a restore was interrupted by a crash of the sidecar; the service is as it was before it (the restore was rolled back): restore again",
				"key", rs.ArtifactKey, "service", artifact.ServiceName(rs.Project, rs.Service, ""), "strategy", rs.Strategy)
		}
	}
	if n, err := cat.InterruptVerifies(ctx, time.Now()); err != nil {
		return err
	} else if n > 0 {
		rc.log.Warn("verifies were interrupted by a crash of the sidecar; their scratch copies are removed now", "verifies", n)
	}
	// Scratch copies of this sidecar's earlier life (killed mid-verify), and expired ones.
	if rc.opts.API == nil {
		// No Engine (tests of the catalog's recovery alone).
	} else if n, err := scratch.Reap(ctx, rc.opts.API, scratch.Stale(rc.opts.Owner, time.Now()), rc.log); err != nil {
		rc.log.Warn("could not remove every leftover scratch container", "error", err)
	} else if n > 0 {
		rc.log.Info("removed leftover scratch containers of interrupted verifies", "count", n)
	}
	runs, err := cat.Interrupt(ctx, time.Now())
	if err != nil {
		return err
	}
	jobs, err := cat.Jobs(ctx)
	if err != nil {
		return err
	}
	jobOf := map[int64]catalog.Job{}
	for _, j := range jobs {
		jobOf[j.ID] = j
	}
	for _, run := range runs {
		rc.log.Warn("a run was interrupted by a crash of the sidecar", "run", run.ID, "started", run.StartedAt)
		j := jobOf[run.JobID]
		rc.opts.Notifier.Notify("", notify.Event{Kind: "recovery", Project: j.Project, Service: j.Service, Job: j.Name, Target: j.Target, Failed: true,
			Error: fmt.Sprintf("a run started %s was interrupted by a crash of the sidecar", run.StartedAt.Format(time.RFC3339))})
		for _, id := range strings.Split(run.StoppedContainer, ",") { // catalogs before schema 5
			if id != "" {
				rc.restart(ctx, catalog.Stop{Container: id, Name: id, Operation: "an interrupted run"})
			}
		}
	}
	stops, err := cat.Stops(ctx)
	if err != nil {
		return err
	}
	for _, s := range stops {
		rc.restart(ctx, s)
	}
	// Interrupt recorded each interrupted run's artifact as a clean-up: settled here with
	// those of earlier lives a second crash cut short, and failed runs' unfinished uploads.
	rc.settleAll(ctx, true)
	return nil
}

// Settle settles every clean-up the catalog holds that can be settled now; the others wait
// for the next call (after each run) or the next start.
func (rc *Recovery) Settle(ctx context.Context) { rc.settleAll(ctx, false) }

// settleAll settles every clean-up the catalog holds. With retry, what cannot be done now is
// retried until done (Keep) and shown by Pending; without, it waits in the catalog
// for the next call (after each run) or the next start.
func (rc *Recovery) settleAll(ctx context.Context, retry bool) {
	pending, err := rc.opts.Catalog.PendingCleanups(ctx)
	if err != nil || len(pending) == 0 {
		return
	}
	jobs, err := rc.opts.Catalog.Jobs(ctx)
	if err != nil {
		return
	}
	targetOf := map[int64]string{}
	for _, j := range jobs {
		targetOf[j.ID] = j.Target
	}
	for _, run := range pending {
		tgtName := targetOf[run.JobID]
		tgt, ok := rc.opts.Targets[tgtName]
		if !ok {
			rc.log.Warn("the target of a run's artifact is no longer defined; it is not cleaned up", "run", run.ID, "target", tgtName, "key", run.Cleanup)
			_ = rc.opts.Catalog.CleanupDone(ctx, run.ID)
			continue
		}
		desc := fmt.Sprintf("remove the unfinished upload of the failed run %d (%s)", run.ID, run.Cleanup)
		if run.Status == control.Interrupted {
			desc = fmt.Sprintf("finish the interrupted run %d (%s)", run.ID, run.Cleanup)
		}
		settle := func(ctx context.Context) error { return rc.settle(ctx, tgt, run) }
		if err := settle(ctx); err != nil && retry {
			rc.add(desc, settle, err)
		} else if err != nil {
			rc.log.Warn("cannot settle a run's artifact yet; tried again after the next run", "run", run.ID, "key", run.Cleanup, "error", err)
		}
	}
}

// settle decides a run's clean-up key and records that it is done: an interrupted run whose
// manifest exists is the success it was; otherwise what the run left is removed (a failed
// run's key whose manifest exists is a complete backup after all: nothing to remove).
func (rc *Recovery) settle(ctx context.Context, tgt target.Target, run catalog.Run) error {
	key := run.Cleanup
	m, err := listing.ReadManifest(ctx, tgt, key)
	if err == nil && rc.opts.Keys.Verify(m) != nil || errors.Is(err, artifact.ErrCorrupt) {
		// Not a manifest this sidecar signed at the run's key (unsigned, unreadable, naming
		// another artifact): it goes with the rest, instead of stalling recovery for ever.
		rc.log.Warn("the manifest at an interrupted run's key is not one this sidecar signed; removing it with what the run left", "run", run.ID, "key", key)
		if err := tgt.Delete(ctx, artifact.ManifestKey(key)); err != nil {
			return fmt.Errorf("removing the unsigned manifest of %s: %w", key, err)
		}
		err = target.ErrNotExist
	}
	switch {
	case err == nil && run.Status == control.Interrupted:
		if err := rc.opts.Catalog.Recovered(ctx, catalog.Run{ID: run.ID, Size: m.Size, SHA256: m.SHA256}); err != nil {
			return err
		}
		rc.log.Info("the interrupted run had finished writing its backup; recorded as a success", "run", run.ID, "key", key, "size", m.Size)
		return nil
	case err == nil:
		return rc.opts.Catalog.CleanupDone(ctx, run.ID)
	case !errors.Is(err, target.ErrNotExist):
		return fmt.Errorf("checking the artifact %s of run %d: %w", key, run.ID, err)
	}
	if err := listing.RemoveUnpublished(ctx, tgt, key); err != nil {
		return fmt.Errorf("removing the partial artifact %s of run %d: %w", key, run.ID, err)
	}
	rc.log.Info("removed what the run left of its artifact", "run", run.ID, "status", run.Status, "key", key)
	return rc.opts.Catalog.CleanupDone(ctx, run.ID)
}

// restart starts a container an interrupted operation had stopped, now or by retrying.
func (rc *Recovery) restart(ctx context.Context, s catalog.Stop) {
	do := func(ctx context.Context) error {
		var scale *containers.ServiceScale
		if s.ServiceID != "" {
			scale = &containers.ServiceScale{ServiceID: s.ServiceID, Name: s.Name, Replicas: s.Replicas}
		}
		started, err := containers.Resume(ctx, rc.opts.API, s.Container, s.StoppedAt, scale)
		if err != nil {
			return err
		}
		if started {
			msg := "started a container the interrupted run had stopped"
			switch {
			case scale != nil:
				msg = "scaled back a swarm service the interrupted operation had scaled to 0"
			case strings.HasPrefix(s.Operation, "restore"):
				msg = "started the container of an interrupted restore"
			}
			rc.log.Info(msg, "container", s.Name, "operation", s.Operation)
		}
		if s.ID != 0 {
			return rc.opts.Catalog.Started(ctx, s.ID)
		}
		return nil
	}
	if err := do(ctx); err != nil {
		what := fmt.Sprintf("start %s (stopped by %s)", s.Name, s.Operation)
		if s.ServiceID != "" {
			what = fmt.Sprintf("scale swarm service %s back to %d (scaled to 0 by %s)", s.Name, s.Replicas, s.Operation)
		}
		rc.add(what, do, err)
	}
}
