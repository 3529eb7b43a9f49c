package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/retention"
)

// pruneTimeout bounds a prune that outlives a shutdown.
const pruneTimeout = time.Minute

// prune applies the job's retention to the job's backups as the target lists them (the
// manifests, not the catalog), deleting each pruned backup's manifest, then its artifact.
// It only ever sees the backups of this job under the sidecar's own prefix; it always keeps
// the backup just written (keep), and never counts nor deletes a backup dated in the future.
func (r *Runner) prune(ctx context.Context, j *Job, keep string, log *slog.Logger) ([]string, error) {
	if j.manual || j.Retention == (retention.Policy{}) {
		return nil, nil // no retention: keep every backup
	}
	name := j.TargetName()
	tgt := r.opts.Targets[name]
	dir := artifact.Dir(j.Project, j.Service)
	listing, err := pipeline.List(ctx, tgt, dir+"/")
	if err != nil {
		r.opts.Recorder.Pruned(name, 0, true)
		return nil, fmt.Errorf("retention: listing %s: %w (nothing was deleted)", tgt, err)
	}
	var mine []retention.Backup
	for _, m := range listing.Backups {
		if path.Dir(m.Artifact) == dir && m.Job == j.Name {
			mine = append(mine, retention.Backup{Key: m.Artifact, Created: m.CreatedAt})
		}
	}
	now := time.Now()
	var deleted []string
	var errs []error
	for _, dec := range retention.Apply(j.Retention, mine, retention.Clock{Location: r.opts.Location, Future: now.Add(artifact.FutureSkew), Keep: keep}) {
		if dec.Keep {
			if slices.Contains(dec.Reasons, "dated in the future (not counted)") {
				log.Warn("retention keeps a backup dated in the future and does not count it (check the clocks of the hosts that write to this target)", "key", dec.Key, "created", dec.Created)
			} else {
				log.Debug("retention keeps", "key", dec.Key, "because", strings.Join(dec.Reasons, ", "))
			}
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		// Manifest first: a backup without its manifest is invisible, never half-listed.
		if err := tgt.Delete(ctx, artifact.ManifestKey(dec.Key)); err != nil {
			errs = append(errs, fmt.Errorf("deleting the manifest of %s: %w", dec.Key, err))
			continue
		}
		faults.Point(ctx, "prune")
		// The manifest is gone: finish the pair even if the run is being cancelled now.
		if err := tgt.Delete(context.WithoutCancel(ctx), dec.Key); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", dec.Key, err))
			continue
		}
		log.Info("pruned backup", "key", dec.Key, "created", dec.Created, "retention", j.Retention.String(),
			"why", "not kept by any rule of retention "+j.Retention.String())
		deleted = append(deleted, dec.Key)
	}
	err = errors.Join(errs...)
	if err != nil {
		log.Error("retention could not delete every backup it pruned", "error", err)
	}
	r.opts.Recorder.Pruned(name, len(deleted), err != nil)
	return deleted, err
}

// usagePrefix is what the sidecar's scope holds on a target.
func (r *Runner) usagePrefix() string {
	if r.opts.AllProjects {
		return ""
	}
	return artifact.ProjectDir(r.opts.Project)
}

// updateUsage lists what a target holds for the sidecar's scope (the metrics and status read it).
func (r *Runner) updateUsage(ctx context.Context, name string) {
	tgt, ok := r.opts.Targets[name]
	if !ok {
		return
	}
	listing, err := pipeline.List(ctx, tgt, r.usagePrefix())
	if err != nil {
		r.log.Warn("listing the target failed", "target", name, "error", err)
		return
	}
	info := control.TargetInfo{Name: name, URL: tgt.String(), Backups: len(listing.Backups), Listed: time.Now()}
	for _, m := range listing.Backups {
		info.Bytes += m.Size
	}
	r.mu.Lock()
	r.usage[name] = info
	r.mu.Unlock()
}

// UpdateUsage lists every target (at start-up, and on each resync).
func (r *Runner) UpdateUsage(ctx context.Context) {
	for _, name := range r.TargetNames() {
		r.updateUsage(ctx, name)
	}
}
