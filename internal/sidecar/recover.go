package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/target"
)

// recover finishes what a crash (kill -9, OOM, power loss) left: runs still "running" in the
// catalog become "interrupted", the containers they had stopped are started again, and their
// unfinished artifacts are removed. A run whose manifest was written before the crash is a
// complete backup and is kept.
func (d *Daemon) recover(ctx context.Context) error {
	defer d.cleanUp(ctx)
	restores, err := d.cat.InterruptRestores(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, r := range restores {
		d.log.Warn("a restore was interrupted by a crash of the sidecar; the service's data may be partly restored: restore again",
			"key", r.ArtifactKey, "service", r.Project+"/"+r.Service)
		if started, err := containers.StartIfStopped(ctx, d.api, r.Container); err != nil {
			d.log.Error("starting the container of an interrupted restore failed", "container", r.Container, "error", err)
		} else if started {
			d.log.Info("started the container of an interrupted restore", "container", r.Container)
		}
	}
	runs, err := d.cat.Interrupt(ctx, time.Now())
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return nil
	}
	jobs, err := d.cat.Jobs(ctx)
	if err != nil {
		return err
	}
	targetOf := map[int64]string{}
	for _, j := range jobs {
		targetOf[j.ID] = j.Target
	}
	var errs []error
	for _, r := range runs {
		log := d.log.With("run", r.ID, "started", r.StartedAt)
		log.Warn("a run was interrupted by a crash of the sidecar")
		for _, id := range strings.Split(r.StoppedContainer, ",") {
			if id == "" {
				continue
			}
			started, err := containers.StartIfStopped(ctx, d.api, id)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("starting container %s that an interrupted run had stopped: %w", id, err))
			case started:
				log.Info("started a container the interrupted run had stopped", "container", id)
			}
		}
		if r.ArtifactKey == "" {
			continue
		}
		tgt, ok := d.targets[targetOf[r.JobID]]
		if !ok {
			log.Warn("the interrupted run's target is no longer defined; cannot clean up its artifact", "target", targetOf[r.JobID], "key", r.ArtifactKey)
			continue
		}
		if rc, err := tgt.Get(ctx, artifact.ManifestKey(r.ArtifactKey)); err == nil {
			rc.Close()
			log.Info("the interrupted run had finished writing its backup; keeping it", "key", r.ArtifactKey)
			continue
		} else if !errors.Is(err, target.ErrNotExist) {
			errs = append(errs, fmt.Errorf("checking the interrupted run's artifact %s: %w", r.ArtifactKey, err))
			continue
		}
		if err := errors.Join(tgt.Delete(ctx, r.ArtifactKey), target.RemoveIncomplete(ctx, tgt, r.ArtifactKey)); err != nil {
			errs = append(errs, fmt.Errorf("removing the interrupted run's partial artifact %s: %w", r.ArtifactKey, err))
			continue
		}
		log.Info("removed the interrupted run's partial artifact", "key", r.ArtifactKey)
	}
	if err := errors.Join(errs...); err != nil {
		// Not fatal: the sidecar runs on, and the operator reads what to do.
		d.log.Error("recovery was incomplete", "error", err)
	}
	return nil
}

// cleanUp removes the unfinished uploads that failed runs left because the target could not
// be reached then; what still fails is tried again after the next run.
func (d *Daemon) cleanUp(ctx context.Context) {
	pending, err := d.cat.PendingCleanups(ctx)
	if err != nil || len(pending) == 0 {
		return
	}
	jobs, err := d.cat.Jobs(ctx)
	if err != nil {
		return
	}
	targetOf := map[int64]string{}
	for _, j := range jobs {
		targetOf[j.ID] = j.Target
	}
	for _, r := range pending {
		tgt, ok := d.targets[targetOf[r.JobID]]
		if ok {
			if rc, err := tgt.Get(ctx, artifact.ManifestKey(r.Cleanup)); err == nil {
				rc.Close() // a complete backup after all: nothing to clean
			} else if !errors.Is(err, target.ErrNotExist) {
				continue // the target still does not answer
			} else if err := errors.Join(target.RemoveIncomplete(ctx, tgt, r.Cleanup), tgt.Delete(ctx, r.Cleanup)); err != nil {
				d.log.Warn("cannot remove a failed run's unfinished upload yet", "key", r.Cleanup, "error", err)
				continue
			} else {
				d.log.Info("removed a failed run's unfinished upload", "key", r.Cleanup)
			}
		}
		_ = d.cat.CleanupDone(ctx, r.ID)
	}
}
