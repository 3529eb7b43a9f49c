package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Restore verifies and restores a backup into a service; the service's jobs do not run
// meanwhile.
func (d *Daemon) Restore(ctx context.Context, req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	name := req.Target
	if name == "" {
		name = "default"
	}
	tgt, ok := d.targets[name]
	if !ok {
		return nil, fmt.Errorf("no target %q on the sidecar (targets: %s)", name, strings.Join(d.cfg.TargetNames(), ", "))
	}
	c, err := containers.Find(ctx, d.api, req.Project, req.Service)
	if err != nil {
		return nil, err
	}
	var m *artifact.Manifest
	if req.Key == "latest" {
		listing, err := engine.List(ctx, tgt, artifact.Dir(c.Project, c.Service)+"/")
		if err != nil {
			return nil, err
		}
		if len(listing.Backups) == 0 {
			return nil, fmt.Errorf("no backup of %s on target %s", c, name)
		}
		m = listing.Backups[0]
	} else if m, err = engine.ReadManifest(ctx, tgt, strings.TrimSuffix(req.Key, artifact.ManifestSuffix)); err != nil {
		return nil, err
	}
	if !detect.Supports(ctx, c, m.Strategy) {
		return nil, fmt.Errorf("refusing to restore: %s is a %s backup, but %s (image %s) does not look like a %s server", m.Artifact, m.Strategy, c, c.Image, m.Strategy)
	}
	strat, err := strategy.New(m.Strategy, strategy.Options{Log: log})
	if err != nil {
		return nil, err
	}
	unlock, err := d.lockService(c.Project, c.Service)
	if err != nil {
		return nil, err
	}
	defer unlock()
	started := time.Now()
	// Recorded before anything is stopped: a crash mid-restore starts the container again.
	id, err := d.cat.StartRestore(ctx, catalog.Restore{Project: c.Project, Service: c.Service, ArtifactKey: m.Artifact,
		Target: name, Container: c.ID, StartedAt: started})
	if err != nil {
		return nil, err
	}
	log.Info("restoring", "key", m.Artifact, "into", c.String())
	err = engine.Restore(ctx, engine.RestoreRequest{Target: tgt, Manifest: m, Container: c, Strategy: strat,
		StopContainer: m.Strategy == "volume" && !req.NoStop, Log: log})
	finish := catalog.Restore{ID: id, Status: catalog.Success, FinishedAt: time.Now()}
	if err != nil {
		finish.Status, finish.Error = catalog.Failed, err.Error()
	}
	if ferr := d.cat.FinishRestore(context.WithoutCancel(ctx), finish); ferr != nil {
		log.Error("recording the restore failed", "error", ferr)
	}
	if err != nil {
		return nil, err
	}
	return &control.Result{Key: m.Artifact, Target: name, Duration: time.Since(started), Manifest: m}, nil
}

// lockService holds every job of a service, so that no backup runs during a restore.
func (d *Daemon) lockService(project, service string) (func(), error) {
	d.mu.Lock()
	var held []*job
	var busy string
	for _, j := range d.jobs {
		if j.Project != project || j.Service != service {
			continue
		}
		select {
		case j.running <- struct{}{}:
			held = append(held, j)
		default:
			busy = j.Key()
		}
	}
	d.mu.Unlock()
	unlock := func() {
		for _, j := range held {
			<-j.running
		}
	}
	if busy != "" {
		unlock()
		return nil, fmt.Errorf("job %s is running a backup of the service now: restore when it is done", busy)
	}
	return unlock, nil
}
