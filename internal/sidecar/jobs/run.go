package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// RunJob runs the scheduled job named key (project/service/job) now. extra, when set, also
// receives the run's log (the plugin's `run` streams it).
func (r *Runner) RunJob(ctx context.Context, key string, extra slog.Handler) (*control.Result, error) {
	r.mu.Lock()
	j, ok := r.jobs[key]
	if ok && j.Leader != "" {
		// A member of a job with several targets: its leader's run writes to it.
		j, ok = r.jobs[j.Leader]
	}
	r.mu.Unlock()
	if !ok {
		return nil, &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf("no job %s (jobs: %s)", key, strings.Join(r.jobKeys(), ", "))}
	}
	return r.run(ctx, j, extra)
}

// Run runs what a plugin's `run SERVICE[/JOB]` asks for, in the sidecar's own context (it
// outlives the plugin, ends with the sidecar or the run timeout): the service's job, or a
// one-off backup of a service without jobs as its labels say (detected strategy, default
// target, never pruned), recorded in the catalog like any run.
func (r *Runner) Run(req control.RunRequest, extra slog.Handler) (*control.Result, error) {
	ctx, done := r.manualContext()
	defer done()
	j, err := r.jobFor(ctx, req)
	if err != nil {
		return nil, err
	}
	if req.Incremental && !j.Incremental { // asked by hand: this run only
		one := *j
		one.Incremental, j = true, &one
	}
	return r.run(ctx, j, extra)
}

func (r *Runner) jobKeys() []string {
	var keys []string
	for _, j := range r.Jobs() {
		keys = append(keys, j.Key())
	}
	return keys
}

// run runs j now: the service is locked, the run is in the catalog before anything is
// stopped, and every stop is recorded; retention runs only after a successful backup.
//
// The job's dead-man URL is pinged when the run starts and ends (with the run's log when it
// fails), and the job's notification set is told the outcome.
func (r *Runner) run(ctx context.Context, j *Job, extra slog.Handler) (out *control.Result, err error) {
	tail := notify.NewTail(40)
	handlers := []slog.Handler{r.log.Handler(), tail.Handler()}
	if extra != nil {
		handlers = append(handlers, extra)
	}
	log := slog.New(slog.NewMultiHandler(handlers...)).With("job", j.Key())
	unlock, err := r.lock(ctx, j.Project, j.Service, "backup "+j.Key(), log)
	if err != nil {
		return nil, &control.Error{Code: control.CodeBusy, Message: err.Error()}
	}
	defer unlock()
	started := time.Now()
	ended := r.announce(j, tail, started)
	defer func() { ended(out, err) }()
	if j.manual {
		id, err := r.opts.Catalog.UpsertJob(ctx, catalog.Job{Project: j.Project, Service: j.Service, Name: catalog.ManualJob, Strategy: j.Strategy, Target: j.TargetName()})
		if err != nil {
			return nil, err
		}
		j.catalogID = id
	}
	// A job with several targets writes to all of them in one run; each target is a member
	// job with its own runs in the catalog, retention, metrics and status line.
	members := r.members(j)
	p, err := r.planBackup(ctx, j, members, log, started)
	if err != nil {
		if ids, rerr := r.startRuns(ctx, members, started, ""); rerr == nil {
			for i, m := range members {
				r.finish(ctx, m, log, catalog.Run{ID: ids[i], Status: control.Failed, FinishedAt: time.Now(), Error: err.Error()}, started)
			}
		}
		log.Error("backup failed; older backups are untouched and retention did not run", "error", err)
		return nil, err
	}
	// Recorded before anything is stopped: a crash from here on is recovered.
	runIDs, err := r.startRuns(ctx, members, started, p.Key)
	if err != nil {
		return nil, err
	}
	res, err := p.Run(ctx)
	err = r.stoppingErr(err)
	// Stored on some targets only, and nothing else went wrong: those targets' runs succeed.
	var partial *pipeline.TargetsError
	onlyTargets := errors.As(err, &partial) && err.Error() == partial.Error()
	stored := r.finishRuns(ctx, members, runIDs, log, started, p.Key, res, err, onlyTargets)
	if err != nil && !onlyTargets {
		log.Error("backup failed; older backups are untouched and retention did not run", "error", err)
		return nil, err
	}
	duration := time.Since(started)
	log.Info("backup done", "key", res.Key, "size", res.Manifest.Size, "duration", duration.Round(time.Millisecond).String(), "targets", strings.Join(res.Stored, ", "))
	if onlyTargets {
		log.Error("the backup is stored on some of the job's targets only; retention ran on those", "error", err)
	}
	pruned, perr := r.pruneStored(ctx, stored, res.Key, log)
	// A prune error (or a target that failed) is reported, but the backup stands.
	return &control.Result{Key: res.Key, Target: strings.Join(res.Stored, ","), Duration: duration, Backup: wire.FromManifest(res.Manifest), Pruned: pruned}, errors.Join(err, perr)
}

// announce pings the job's dead-man URL that its run starts, and returns what tells the end:
// the ping (with the run's log tail when it failed) and the job's notification set.
func (r *Runner) announce(j *Job, tail *notify.Tail, started time.Time) (ended func(out *control.Result, err error)) {
	pingID := randomID()
	r.opts.Notifier.Ping(j.Ping, notify.PingStart, pingID, "")
	return func(out *control.Result, err error) {
		ev := notify.Event{Kind: "backup", Project: j.Project, Service: j.Service, Job: j.manifestJob(), Target: j.TargetName(),
			Failed: err != nil, Duration: time.Since(started).Round(time.Millisecond)}
		if out != nil {
			ev.Key, ev.Size = out.Key, out.Backup.Size
		}
		if err != nil {
			ev.Error = err.Error()
			r.opts.Notifier.Ping(j.Ping, notify.PingFail, pingID, tail.String()+"\n"+err.Error())
		} else {
			r.opts.Notifier.Ping(j.Ping, notify.PingSuccess, pingID, "")
		}
		r.opts.Notifier.Notify(j.Notify, ev)
	}
}

// startRuns records a run of each member in the catalog (key: the backup's, once planned).
func (r *Runner) startRuns(ctx context.Context, members []*Job, started time.Time, key string) ([]int64, error) {
	ids := make([]int64, len(members))
	for i, m := range members {
		var err error
		if ids[i], err = r.opts.Catalog.StartRun(ctx, catalog.Run{JobID: m.catalogID, StartedAt: started, ArtifactKey: key}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// finishRuns records how the run ended on each member's target and returns the members
// whose target stored the backup.
func (r *Runner) finishRuns(ctx context.Context, members []*Job, ids []int64, log *slog.Logger, started time.Time, key string,
	res *pipeline.BackupResult, err error, onlyTargets bool) (stored []*Job) {
	for i, m := range members {
		finish := outcome(m.TargetName(), key, res, err, onlyTargets)
		finish.ID = ids[i]
		if finish.Status == control.Success {
			stored = append(stored, m)
		}
		r.finish(ctx, m, log, finish, started)
	}
	return stored
}

// pruneStored applies the retention of each member that stored the backup key. Retention
// belongs to the backup that was just stored: a shutdown that begins now does not leave one
// backup more than the job keeps (the prune is bounded, and quick on any target).
func (r *Runner) pruneStored(ctx context.Context, stored []*Job, key string, log *slog.Logger) (pruned []string, err error) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pruneTimeout)
	defer cancel()
	var errs []error
	for _, m := range stored {
		deleted, perr := r.prune(pctx, m, key, log)
		pruned, errs = append(pruned, deleted...), append(errs, perr)
		r.updateUsage(pctx, m.TargetName())
	}
	return pruned, errors.Join(errs...)
}

// outcome is how a run ended on the target named tgt: key is the backup's, res and err what
// the plan's run returned (onlyTargets: err only says that some targets failed).
func outcome(tgt, key string, res *pipeline.BackupResult, err error, onlyTargets bool) catalog.Run {
	finish := catalog.Run{FinishedAt: time.Now()}
	var terr error
	failedHere := false
	if res != nil {
		terr, failedHere = res.Failed[tgt]
	}
	switch {
	case res != nil && failedHere:
		// This target failed and holds nothing; the backup stands on the others.
		finish.Status, finish.Error, finish.Cleanup = control.Failed, terr.Error(), key
	case res != nil && (err == nil || onlyTargets):
		finish.Status, finish.ArtifactKey, finish.Size, finish.SHA256 = control.Success, res.Key, res.Manifest.Size, res.Manifest.SHA256
	case res != nil: // stored, but the post command failed: the backup stays, the run fails
		finish.Status, finish.Error = control.Failed, err.Error()
		finish.ArtifactKey, finish.Size, finish.SHA256 = res.Key, res.Manifest.Size, res.Manifest.SHA256
	default:
		// The target may have kept part of the upload (S3 down while aborting it): removed
		// once the target answers again.
		finish.Status, finish.Error, finish.Cleanup = control.Failed, err.Error(), key
	}
	return finish
}

// members are j and the jobs that write to j's other targets in j's runs, in the order
// of its docker-backup.target label.
func (r *Runner) members(j *Job) []*Job {
	out := []*Job{j}
	if len(j.Targets) < 2 || j.Leader != "" {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range j.Targets[1:] {
		if m, ok := r.jobs[memberOf(j.Key(), t)]; ok {
			out = append(out, m)
		}
	}
	return out
}

// finish records how a run ended, in the catalog and the counters.
func (r *Runner) finish(ctx context.Context, j *Job, log *slog.Logger, run catalog.Run, started time.Time) {
	if err := r.opts.Catalog.FinishRun(context.WithoutCancel(ctx), run); err != nil {
		log.Error("recording the run failed", "error", err)
	}
	r.recovery.Settle(ctx)
	if !j.manual {
		r.opts.Recorder.RunFinished(j.ID(), run.Status == control.Success, time.Since(started), run.Size)
	}
}

// planBackup finds the service's container and plans its backup as the job says.
func (r *Runner) planBackup(ctx context.Context, j *Job, members []*Job, log *slog.Logger, started time.Time) (*plan.Backup, error) {
	c, err := containers.Resolve(ctx, r.opts.API, j.Project, j.Service, "")
	if err != nil {
		return nil, err
	}
	hookTimeout := j.HookTimeout
	if hookTimeout == 0 {
		hookTimeout = r.opts.HookTimeout
	}
	var recipients crypt.Recipients
	if err := recipients.Add(append(slices.Clone(r.opts.Recipients), j.Recipients...)...); err != nil {
		return nil, fmt.Errorf("the encryption recipients: %w", err)
	}
	var targets []pipeline.Destination
	for _, m := range members {
		tgt, ok := r.opts.Targets[m.TargetName()]
		if !ok {
			return nil, fmt.Errorf("no target %q on the sidecar (targets: %s)", m.TargetName(), strings.Join(r.TargetNames(), ", "))
		}
		d := pipeline.Destination{Name: m.TargetName(), Target: tgt}
		if r.opts.UploadLimit != nil {
			d.LimitUpload = r.opts.UploadLimit(m.TargetName())
		}
		targets = append(targets, d)
	}
	p, err := plan.NewBackup(ctx, r.opts.API, plan.BackupSpec{Container: c, Strategy: j.Strategy,
		Options: strategy.Options{Database: j.Database, Paths: j.Paths, Exclude: j.Exclude, Worker: r.opts.Worker, RequireWorker: r.opts.RequireWorker}, Targets: targets, Compression: r.opts.Compression,
		Job: j.manifestJob(), Stop: j.Stop, Pre: j.Pre, Post: j.Post, HookTimeout: hookTimeout, Signer: r.opts.Signer, Encrypt: &recipients,
		Guard: newGuard(r.opts.Catalog, "backup "+j.Key()), At: started, Log: log, Incremental: plan.IncrementalIf(j.Incremental, r.opts.RepositoryKeys, r.opts.Keys)})
	if err != nil {
		return nil, err
	}
	if p.Detected != "" {
		log.Info("strategy detected", "strategy", p.Strategy.Name(), "reason", p.Detected)
	}
	return p, nil
}

// jobFor finds the job a run request means, or makes a one-off job for a service that has
// none, as its labels say (an enabled service without a schedule) or detected.
func (r *Runner) jobFor(ctx context.Context, req control.RunRequest) (*Job, error) {
	var matches []*Job
	var names []string
	for _, j := range r.Jobs() {
		if j.Project == req.Project && j.Service == req.Service && j.Leader == "" {
			names = append(names, j.Name)
			if req.Job == "" || req.Job == j.Name {
				matches = append(matches, j)
			}
		}
	}
	if len(matches) > 1 && req.Job == "" {
		for _, j := range matches {
			if j.Name == labels.DefaultJob {
				return j, nil // SERVICE alone means its default job
			}
		}
	}
	notFound := func(format string, a ...any) error {
		return &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf(format, a...)}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) > 1:
		return nil, &control.Error{Code: control.CodeInvalid, Message: fmt.Sprintf("service %s has several jobs (%s): choose one as %s/JOB", req.Service, strings.Join(names, ", "), req.Service)}
	case req.Job != "" && len(names) > 0:
		return nil, notFound("service %s has no job %q (its jobs: %s)", req.Service, req.Job, strings.Join(names, ", "))
	case req.Job != "":
		return nil, notFound("service %s has no scheduled jobs, so no job %q", req.Service, req.Job)
	}
	c, err := containers.Find(ctx, r.opts.API, req.Project, req.Service)
	if err != nil {
		if errors.Is(err, containers.ErrNotFound) {
			return nil, &control.Error{Code: control.CodeNotFound, Message: err.Error()}
		}
		return nil, err
	}
	if reason := labels.Excluded(c.Labels); reason != "" {
		return nil, &control.Error{Code: control.CodeRefused, Message: fmt.Sprintf("%s is not backed up (%s)", c, reason)}
	}
	j := &Job{Project: c.Project, Service: c.Service, Container: c.Name, manual: true}
	parsed, errs := labels.Parse(c.Name, c.Labels, labels.Options{Strategies: strategies.Names(), Targets: r.TargetNames(), NotifySets: r.opts.Notifier.Sets(), Manual: true})
	if len(errs) > 0 {
		return nil, &control.Error{Code: control.CodeInvalid, Message: errs[0].Error()}
	}
	for _, lj := range parsed {
		if lj.Name == labels.DefaultJob {
			j.Job = lj
		}
	}
	j.Name, j.Schedule, j.Retention = catalog.ManualJob, "", retention.Policy{}
	return j, nil
}

// randomID pairs a run's start ping with its end.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
