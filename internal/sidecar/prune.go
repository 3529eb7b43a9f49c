package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/retention"
)

// prune applies the job's retention to the job's backups as the target lists them (the
// manifests, not the catalog), deleting each pruned backup's manifest, then its artifact.
// It only ever sees the backups of this job under the sidecar's own prefix, and always
// keeps the newest.
func (d *Daemon) prune(ctx context.Context, j *job, log *slog.Logger) ([]string, error) {
	if j.Retention == (retention.Policy{}) {
		return nil, nil // no retention: keep every backup
	}
	name := j.target()
	tgt := d.targets[name]
	dir := artifactDir(j)
	listing, err := engine.List(ctx, tgt, dir+"/")
	if err != nil {
		d.obs.Pruned(name, 0, true)
		return nil, fmt.Errorf("retention: listing %s: %w (nothing was deleted)", tgt, err)
	}
	var mine []retention.Backup
	for _, m := range listing.Backups {
		if path.Dir(m.Artifact) == dir && m.Job == j.Name {
			mine = append(mine, retention.Backup{Key: m.Artifact, Created: m.CreatedAt})
		}
	}
	var deleted []string
	var errs []error
	for _, dec := range retention.Apply(j.Retention, mine, d.cfg.Location) {
		if dec.Keep {
			log.Debug("retention keeps", "key", dec.Key, "because", strings.Join(dec.Reasons, ", "))
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
	d.obs.Pruned(name, len(deleted), err != nil)
	d.updateUsage(ctx, name)
	return deleted, err
}

// artifactDir is the directory of a job's artifacts on its target.
func artifactDir(j *job) string { return artifact.Dir(j.Project, j.Service) }

// updateUsage reports how many backups a target holds under the sidecar's prefix, and their size.
func (d *Daemon) updateUsage(ctx context.Context, name string) {
	prefix := ""
	if !d.cfg.AllProjects {
		prefix = artifact.Dir(d.cfg.Project, "x")
		prefix = prefix[:len(prefix)-1]
	}
	listing, err := engine.List(ctx, d.targets[name], prefix)
	if err != nil {
		d.log.Warn("listing the target failed", "target", name, "error", err)
		return
	}
	var bytes int64
	for _, m := range listing.Backups {
		bytes += m.Size
	}
	d.obs.TargetUsage(name, len(listing.Backups), bytes)
}
