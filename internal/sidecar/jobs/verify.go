package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/verify"
)

// verifyKey names the scheduler entry of a job's verify.
func verifyKey(key string) string { return key + "#verify" }

// VerifyJob verifies the newest backup of the job key (one its key vouches for, not dated in
// the future), on the job's verify schedule.
func (r *Runner) VerifyJob(ctx context.Context, key string, extra slog.Handler) (*verify.Report, error) {
	r.mu.Lock()
	j, ok := r.jobs[key]
	r.mu.Unlock()
	if !ok {
		return nil, &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf("no job %q", key)}
	}
	log := r.log.With("job", j.Key(), "operation", "verify")
	if extra != nil {
		log = slog.New(slog.NewMultiHandler(r.log.Handler(), extra)).With("job", j.Key(), "operation", "verify")
	}
	tgt, ok := r.opts.Targets[j.TargetName()]
	if !ok {
		return nil, fmt.Errorf("job %s: no target %q on the sidecar", key, j.TargetName())
	}
	started := time.Now()
	m, err := r.newestOfJob(ctx, tgt, j)
	if err != nil {
		r.recordVerify(ctx, j.Project, j.Service, j.Name, j.TargetName(), "", started, nil, err, log)
		return nil, err
	}
	c, err := containers.Find(ctx, r.opts.API, j.Project, j.Service)
	if err != nil {
		r.recordVerify(ctx, j.Project, j.Service, j.Name, j.TargetName(), m.Artifact, started, nil, err, log)
		return nil, err
	}
	return r.verify(ctx, c, j.Name, j.TargetName(), tgt, m.Artifact, m, false, log)
}

// newestOfJob finds the job's newest usable backup (selection.Filter: signed by a trusted
// key, not dated in the future).
func (r *Runner) newestOfJob(ctx context.Context, tgt target.Target, j *Job) (*artifact.Manifest, error) {
	if j.Incremental { // its newest snapshot
		return snapshots.NewestIn(ctx, tgt, r.opts.RepositoryKeys, repo.Access{Trust: r.opts.Keys}, artifact.ServiceName(j.Project, j.Service, ""), j.manifestJob())
	}
	dir := artifact.Dir(j.Project, j.Service)
	found, err := listing.List(ctx, tgt, dir+"/", r.opts.Keys)
	if err != nil {
		return nil, err
	}
	s, _, ok := selection.Filter{Project: j.Project, Service: j.Service, Job: j.Name, Dir: dir}.Latest(found.Backups)
	if !ok {
		return nil, fmt.Errorf("job %s has no backup on target %s to verify yet", j.Key(), j.TargetName())
	}
	return listing.ReadManifest(ctx, tgt, s.Key)
}

// Verify verifies a backup of a service as the plugin asks, in the sidecar's own context.
func (r *Runner) Verify(req control.VerifyRequest, log *slog.Logger) (*control.Result, error) {
	ctx, done := r.manualContext()
	defer done()
	name, tgt, c, err := r.targetAndService(ctx, req.Target, req.Project, req.Service)
	if err != nil {
		return nil, err
	}
	job := catalog.ManualJob
	if m, err := listing.ReadManifest(ctx, tgt, strings.TrimSuffix(req.Key, artifact.ManifestSuffix)); err == nil && m.Job != "" {
		job = m.Job // a job's backup verified by hand counts as the job's verify
	}
	started := time.Now()
	report, err := r.verify(ctx, c, job, name, tgt, req.Key, nil, req.AllowUnsigned, log)
	if err != nil {
		return nil, err
	}
	return &control.Result{Key: report.Backup, Target: name, Duration: time.Since(started), Verify: wire.FromReport(report), Warnings: report.Warnings}, nil
}

// verify runs one verify and records it in the catalog and the metrics.
func (r *Runner) verify(ctx context.Context, c *containers.Container, job, tgtName string, tgt target.Target, key string, m *artifact.Manifest,
	allowUnsigned bool, log *slog.Logger) (*verify.Report, error) {
	started := time.Now()
	id, err := r.opts.Catalog.StartVerify(ctx, catalog.Verify{Project: c.Project, Service: c.Service, Job: job, ArtifactKey: key, Target: tgtName, StartedAt: started})
	if err != nil {
		return nil, err
	}
	strategies, _ := r.serviceScope(c)
	report, err := verify.Run(ctx, verify.Spec{Engine: r.opts.API, Target: tgt, Backup: key, Manifest: m, Within: artifact.Dir(c.Project, c.Service) + "/",
		Service: c, Keys: r.opts.Keys, AllowUnsigned: allowUnsigned, Identities: r.opts.Identities, Strategies: strategies, SameService: true, SnapshotKeys: &r.opts.RepositoryKeys,
		Owner: r.opts.Owner, Timeout: r.opts.Timeout, Log: log, Worker: r.opts.Worker, RequireWorker: r.opts.RequireWorker})
	r.finishVerify(ctx, id, c.Project, c.Service, job, tgtName, key, started, report, err, log)
	return report, r.stoppingErr(err)
}

// recordVerify records a verify that could not start.
func (r *Runner) recordVerify(ctx context.Context, project, service, job, tgtName, key string, started time.Time, report *verify.Report, err error, log *slog.Logger) {
	id, serr := r.opts.Catalog.StartVerify(ctx, catalog.Verify{Project: project, Service: service, Job: job, ArtifactKey: key, Target: tgtName, StartedAt: started})
	if serr != nil {
		log.Error("recording the verify failed", "error", serr)
		return
	}
	r.finishVerify(ctx, id, project, service, job, tgtName, key, started, report, err, log)
}

func (r *Runner) finishVerify(ctx context.Context, id int64, project, service, job, tgtName, key string, started time.Time, report *verify.Report, err error, log *slog.Logger) {
	v := catalog.Verify{ID: id, FinishedAt: time.Now(), ArtifactKey: key}
	switch {
	case err != nil:
		v.Status, v.Summary = control.Errored, err.Error()
		log.Error("verify could not run", "error", err)
	case report.Passed:
		v.Status, v.ArtifactKey, v.Checks = control.Passed, report.Backup, len(report.Checks)
		log.Info("verify passed", "key", report.Backup, "checks", len(report.Checks), "duration", time.Since(started).Round(time.Millisecond))
	default:
		v.Status, v.ArtifactKey, v.Checks = control.Failed, report.Backup, len(report.Checks)
		for _, c := range report.Checks {
			if !c.Passed {
				if v.Failed == 0 {
					v.Summary = fmt.Sprintf("%s: expected %s, found %s", c.Name, c.Expected, c.Found)
				}
				v.Failed++
			}
		}
		log.Error("verify failed: the backup does not restore to what it recorded", "key", report.Backup, "failed_checks", v.Failed, "first", v.Summary)
	}
	if ferr := r.opts.Catalog.FinishVerify(context.WithoutCancel(ctx), v); ferr != nil {
		log.Error("recording the verify failed", "error", ferr)
	}
	result := v.Status
	if errors.Is(err, context.Canceled) {
		result = control.Interrupted
	}
	r.opts.Recorder.VerifyFinished(r.jobID(project, service, job, tgtName), result, time.Since(started))
	if result != control.Interrupted {
		ev := notify.Event{Kind: "verify", Project: project, Service: service, Job: job, Target: tgtName, Key: v.ArtifactKey,
			Failed: v.Status != control.Passed, Error: v.Summary, Duration: time.Since(started).Round(time.Millisecond)}
		r.opts.Notifier.Notify(r.notifySet(project, service, job), ev)
	}
}

// notifySet is the notification set of a job ("" the default one, also for a job the
// sidecar no longer has).
func (r *Runner) notifySet(project, service, job string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j, ok := r.jobs[jobKey(project, service, job)]; ok {
		return j.Notify
	}
	return ""
}

// jobID names a job for metrics; a verify asked by hand of a backup without a job is
// counted under the manual job.
func (r *Runner) jobID(project, service, job, tgtName string) control.JobID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j, ok := r.jobs[jobKey(project, service, job)]; ok {
		return j.ID()
	}
	return control.JobID{Project: project, Service: service, Job: job, Target: tgtName}
}
