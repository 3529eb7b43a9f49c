package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Restore restores a backup into a service, in the sidecar's own context (it outlives the
// plugin, ends with the sidecar or the run timeout). The service is locked (no backup of it
// runs meanwhile), the restore is in the catalog before anything is stopped, and every stop
// is recorded. Only backups the sidecar's key vouches for are restored, unless the request
// allows unsigned ones; and only into the paths the service's jobs back up.
func (r *Runner) Restore(req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	ctx, done := r.manualContext()
	defer done()
	name, tgt, c, err := r.targetAndService(ctx, req.Target, req.Project, req.Service)
	if err != nil {
		return nil, err
	}
	service := artifact.ServiceName(c.Project, c.Service, c.Name)
	unlock, err := r.lock(ctx, c.Project, c.Service, "restore of "+service, log)
	if err != nil {
		return nil, &control.Error{Code: control.CodeBusy, Message: err.Error()}
	}
	defer unlock()
	if c.Task != nil {
		// A Swarm task may have been replaced while the lock waited (a stop: true backup
		// scales the service to 0 and back): restore into the task that runs now.
		if now, err := containers.Find(ctx, r.opts.API, c.Project, c.Service); err == nil {
			c = now
		}
	}

	spec := plan.RestoreSpec{Target: tgt, Backup: req.Key, Within: artifact.Dir(c.Project, c.Service) + "/", Container: c,
		Options: strategy.Options{NoStop: req.NoStop, Worker: r.opts.Worker, RequireWorker: r.opts.RequireWorker}, Keys: r.opts.Keys, AllowUnsigned: req.AllowUnsigned, SameService: true, Identities: r.opts.Identities, SnapshotKeys: &r.opts.RepositoryKeys,
		Guard: newGuard(r.opts.Catalog, "restore "+service), Log: log}
	spec.Strategies, spec.Allowed = r.serviceScope(c)
	var id int64 // the catalog's, once recorded
	spec.Applying = func(ctx context.Context) {
		if err := r.opts.Catalog.RestoreApplying(ctx, id); err != nil {
			log.Error("recording that the restore begins to change the service", "error", err)
		}
	}
	p, err := plan.NewRestore(ctx, spec)
	if err != nil {
		return nil, err
	}
	for _, w := range p.Warnings {
		log.Warn(w)
	}
	m := p.Manifest
	started := time.Now()
	id, err = r.opts.Catalog.StartRestore(ctx, catalog.Restore{Project: c.Project, Service: c.Service, ArtifactKey: m.Artifact,
		Target: name, Container: c.ID, Strategy: m.Strategy, StartedAt: started})
	if err != nil {
		return nil, err
	}
	log.Info("restoring", "key", m.Artifact, "into", c.String())
	err = r.stoppingErr(p.Run(ctx))
	finish := catalog.Restore{ID: id, Status: control.Success, FinishedAt: time.Now()}
	if err != nil {
		finish.Status, finish.Error = control.Failed, err.Error()
		var re *plan.RestoreError
		finish.Partial = errors.As(err, &re) && re.Partial
	}
	if ferr := r.opts.Catalog.FinishRestore(context.WithoutCancel(ctx), finish); ferr != nil {
		log.Error("recording the restore failed", "error", ferr)
	}
	r.opts.Recorder.RestoreFinished(c.Project, c.Service, finish.Status, finish.Partial)
	if err != nil {
		return nil, err
	}
	return &control.Result{Key: m.Artifact, Target: name, Duration: time.Since(started), Backup: wire.FromManifest(m), Warnings: p.Warnings}, nil
}

// targetAndService finds the named target (empty: default) and the service's container.
func (r *Runner) targetAndService(ctx context.Context, name, project, service string) (string, target.Target, *containers.Container, error) {
	if name == "" {
		name = "default"
	}
	tgt, ok := r.opts.Targets[name]
	if !ok {
		return "", nil, nil, &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf("no target %q on the sidecar (targets: %s)", name, strings.Join(r.TargetNames(), ", "))}
	}
	c, err := containers.Find(ctx, r.opts.API, project, service)
	if err != nil {
		return "", nil, nil, err
	}
	return name, tgt, c, nil
}

// serviceScope is what the service's jobs back up: their strategies (none when one detects
// it) and their paths (none — the container's writable mounts — when one takes the defaults).
func (r *Runner) serviceScope(c *containers.Container) (names, paths []string) {
	detected, defaultPaths := false, false
	for _, j := range r.Jobs() {
		if j.Project != c.Project || j.Service != c.Service {
			continue
		}
		if j.Strategy == "" {
			detected = true
		} else if s := strategies.Canonical(j.Strategy); !slices.Contains(names, s) {
			names = append(names, s)
		}
		if len(j.Paths) == 0 {
			defaultPaths = true
		}
		paths = append(paths, j.Paths...)
	}
	if detected {
		names = nil
	}
	if defaultPaths {
		paths = nil
	}
	return names, paths
}
