package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/target"
)

// pruneTimeout bounds a prune that outlives a shutdown.
const pruneTimeout = time.Minute

// prune applies the job's retention to the job's backups as the target lists them (the
// manifests, not the catalog), deleting each pruned backup's manifest, then its artifact and
// chunk list. Which backups are the job's is selection.Filter's rule: only those signed by a
// trusted key, of this job, in its service's directory under the sidecar's own prefix, and
// not dated in the future are counted or deleted; the others are left alone and reported. It
// always keeps the backup just written (keep).
func (r *Runner) prune(ctx context.Context, j *Job, keep string, log *slog.Logger) ([]string, error) {
	if j.manual || j.Retention == (retention.Policy{}) {
		return nil, nil // no retention: keep every backup
	}
	name := j.TargetName()
	tgt := r.opts.Targets[name]
	if j.Incremental { // the job's snapshots in the target's repository, then a prune of it
		res, err := snapshots.RetainIn(ctx, tgt, r.opts.RepositoryKeys, repo.Access{Signer: r.opts.Signer, Trust: r.opts.Keys, Log: log},
			artifact.ServiceName(j.Project, j.Service, ""), j.manifestJob(), j.Retention, retention.Clock{Location: r.opts.Location, Future: time.Now().Add(artifact.FutureSkew)}, keep)
		r.opts.Recorder.Pruned(name, len(res.Forgotten), err != nil)
		return res.Forgotten, err
	}
	dir := artifact.Dir(j.Project, j.Service)
	found, err := listing.List(ctx, tgt, dir+"/", r.opts.Keys)
	if err != nil {
		r.opts.Recorder.Pruned(name, 0, true)
		return nil, fmt.Errorf("retention: listing %s: %w (nothing was deleted)", tgt, err)
	}
	sel := selection.Filter{Project: j.Project, Service: j.Service, Job: j.Name, Dir: dir}.Select(found.Backups)
	r.reportSkipped(j, name, dir, sel.Skipped, log)
	var mine []retention.Backup
	for _, s := range sel.Usable {
		mine = append(mine, retention.Backup{Key: s.Key, Created: s.CreatedAt})
	}
	now := time.Now()
	var deleted []string
	var errs []error
	for _, dec := range retention.Apply(j.Retention, mine, retention.Clock{Location: r.opts.Location, Future: now.Add(artifact.FutureSkew), Keep: keep}) {
		if dec.Keep {
			log.Debug("retention keeps", "key", dec.Key, "because", strings.Join(dec.Reasons, ", "))
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := deleteBackup(ctx, tgt, dec.Key); err != nil {
			errs = append(errs, err)
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

// deleteBackup deletes a backup: its manifest first (a backup without its manifest is
// invisible, never half-listed), then its artifact and chunk list, even if ctx is cancelled
// meanwhile; what an interruption leaves is swept later.
func deleteBackup(ctx context.Context, tgt target.Target, key string) error {
	if err := tgt.Delete(ctx, artifact.ManifestKey(key)); err != nil {
		return fmt.Errorf("deleting the manifest of %s: %w", key, err)
	}
	faults.Point(ctx, "prune")
	ctx = context.WithoutCancel(ctx)
	if err := tgt.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	if err := tgt.Delete(ctx, artifact.ChunksKey(key)); err != nil {
		return fmt.Errorf("deleting the chunk list of %s: %w", key, err)
	}
	return nil
}

// reportSkipped says what retention left alone: backups dated in the future (a warning each
// time), and backups no trusted key signed — counted for the status and metrics, and notified
// once, when more of them appear than the last prune found.
func (r *Runner) reportSkipped(j *Job, target, dir string, skipped []selection.Skip, log *slog.Logger) {
	untrusted := 0
	for _, s := range skipped {
		switch s.Verdict {
		case selection.Future:
			log.Warn("retention keeps a backup dated in the future and does not count it (check the clocks of the hosts that write to this target)", "key", s.Backup.Key, "created", s.Backup.CreatedAt)
		case selection.Untrusted:
			untrusted++
			log.Warn("retention leaves alone a backup no trusted key signed: it is never counted nor deleted (remove it by hand if it is not yours, or trust its key)", "key", s.Backup.Key, "why", s.Backup.Untrusted)
		}
	}
	r.mu.Lock()
	before := r.untrusted[j.Key()]
	r.untrusted[j.Key()] = untrusted
	r.mu.Unlock()
	if untrusted > before {
		r.opts.Notifier.Notify(j.Notify, notify.Event{Kind: "untrusted", Project: j.Project, Service: j.Service, Job: j.Name, Target: target, Failed: true,
			Error: fmt.Sprintf("%d backups in %s on target %s are not signed by a key this sidecar trusts: retention never counts nor deletes them; remove them if they are not yours, or add their host's public key to %s",
				untrusted, dir, target, artifact.EnvTrustedKeys), Time: time.Now()})
	}
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
	info := control.TargetInfo{Name: name, URL: tgt.String()}
	// Counted as listed: nothing of a listing is held.
	if _, err := listing.Walk(ctx, tgt, r.usagePrefix(), r.opts.Keys, func(s artifact.Summary) error {
		info.Backups++
		info.Bytes += s.Size
		return nil
	}); err != nil {
		r.log.Warn("listing the target failed", "target", name, "error", err)
		return
	}
	n, size := snapshots.Usage(ctx, tgt, r.opts.RepositoryKeys, repo.Access{Trust: r.opts.Keys}, r.opts.Project)
	info.Listed, info.Backups, info.Bytes = time.Now(), info.Backups+n, info.Bytes+size
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
