// Package jobs runs the sidecar's work: the backup jobs its reconciler defines (on their
// schedules, or now when the plugin asks), one-off backups and restores, each through the
// shared plan and recorded in the catalog; retention after each successful backup; recovery
// after a crash, retried until done; the catalog's own backup and its rebuild from manifests.
// One operation at a time per service.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/sidecar/recovery"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Job is one backup job of a service, as its labels define it now.
type Job struct {
	labels.Job
	Project, Service string
	Container        string // the container the labels were read from
	Node             string // the Swarm node that runs it; "" outside Swarm
	// Fingerprint changes when anything that defines the job changes.
	Fingerprint string
	// Leader, for a job with several targets, is the key of the member whose runs write to
	// this member's target too (the first target's); "" for a job that runs by itself.
	Leader string

	catalogID int64
	manual    bool // a one-off backup asked for by hand (no schedule, never pruned)
}

// Key names the job: project/service/job, and @target after it for the members of a job
// with several targets other than the first.
func (j *Job) Key() string {
	if j.Leader != "" {
		return memberOf(j.Leader, j.TargetName())
	}
	return jobKey(j.Project, j.Service, j.Name)
}

// jobKey names the job named job of a service: project/service/job.
func jobKey(project, service, job string) string { return project + "/" + service + "/" + job }

// memberOf names the member of a job with several targets that writes to target: JOB@TARGET,
// where JOB is the job's key (as jobs are keyed here) or its name (as the catalog names them).
// This is the one place that spells the format.
func memberOf(job, target string) string { return job + "@" + target }

// Members splits a job with several targets into one job per target: the first runs and
// writes to all of them; the others (keyed JOB@TARGET, see memberOf) have their own
// retention, runs in the catalog, metrics and status line.
func Members(j *Job) []*Job {
	if len(j.Targets) < 2 {
		return []*Job{j}
	}
	out := []*Job{j}
	for _, t := range j.Targets[1:] {
		m := *j
		m.Target, m.Leader = t, j.Key()
		if p, ok := j.TargetRetention[t]; ok {
			m.Retention = p
		}
		out = append(out, &m)
	}
	if p, ok := j.TargetRetention[j.Target]; ok {
		j.Retention = p
	}
	return out
}

// runKey is the key of the job whose runs write to this one: its leader's, or its own.
func (j *Job) runKey() string {
	if j.Leader != "" {
		return j.Leader
	}
	return j.Key()
}

// TargetName is the job's target, "default" when the labels name none.
func (j *Job) TargetName() string {
	if j.Target == "" {
		return "default"
	}
	return j.Target
}

// ID is the job's identity as the control API and metrics name it.
func (j *Job) ID() control.JobID {
	return control.JobID{Project: j.Project, Service: j.Service, Job: j.Name, Strategy: j.Strategy, Target: j.TargetName()}
}

// manifestJob is the job recorded in a backup's manifest; a one-off has none, so no job's
// retention ever prunes it.
func (j *Job) manifestJob() string {
	if j.manual {
		return ""
	}
	return j.Name
}

// Recorder counts what the sidecar does (Prometheus counters and histograms).
type Recorder interface {
	RunFinished(job control.JobID, success bool, d time.Duration, stored int64)
	Pruned(target string, deleted int, failed bool)
	// RestoreFinished counts a restore that ended as outcome (Success or Failed; partial: it
	// failed after it began changing the service).
	RestoreFinished(project, service string, outcome control.Outcome, partial bool)
	VerifyFinished(job control.JobID, outcome control.Outcome, d time.Duration)
}

// Options are what a Runner works with.
type Options struct {
	API         scratch.Engine
	Catalog     *catalog.Catalog
	Scheduler   *schedule.Scheduler
	Targets     map[string]target.Target
	Compression artifact.Compression
	// Location is where retention's calendar days begin.
	Location *time.Location
	// Timeout bounds a run or restore asked for by the plugin (scheduled runs get theirs
	// from the scheduler).
	Timeout     time.Duration
	HookTimeout time.Duration
	Signer      *artifact.SigningKey
	// Keys are what restores, verifies and retention trust (the signer's own key included).
	Keys *artifact.Keyring
	// Recipients are the public keys every backup is encrypted for (a job's label adds its
	// own); Identities decrypt for restores.
	Recipients []string
	Identities *crypt.Identities
	Recorder   Recorder
	Log        *slog.Logger
	// Project is the compose project managed (empty with AllProjects).
	Project     string
	AllProjects bool
	// Node is the Swarm node the sidecar runs on; "" outside Swarm.
	Node string
	// StateDir holds temporary copies of the catalog.
	StateDir string
	// Owner labels the scratch copies verifies make (scratch.SidecarOwner).
	Owner string
	// Notifier sends notifications and dead-man pings (nil: none).
	Notifier *notify.Notifier
	// Worker does volume work beside the data (nil: the archive API); RequireWorker turns
	// the fallback to the archive API into an error.
	Worker        strategy.Worker
	RequireWorker bool
	// UploadLimit is the cap of the uploads to a target, by its name (nil, 0: none).
	UploadLimit func(name string) bandwidth.Rate
	// RepositoryKeys are the key files of encrypted snapshot repositories (incremental jobs).
	RepositoryKeys snapshots.Keys
}

// Runner runs jobs, one-off backups and restores.
type Runner struct {
	opts Options
	log  *slog.Logger
	// root ends when the sidecar shuts down: operations asked for by the plugin derive
	// from it, and manual counts them, so that shutdown waits for their containers.
	root   context.Context
	manual sync.WaitGroup

	mu    sync.Mutex
	jobs  map[string]*Job
	busy  map[string]*hold // "project/service" → the operation holding it
	usage map[string]control.TargetInfo
	// untrusted counts, by job key, the backups in a job's directory that no trusted key
	// signed, as its last prune found them: never counted nor deleted, reported.
	untrusted map[string]int
	recovery  *recovery.Recovery
}

// New returns a Runner; root is the sidecar's lifetime.
func New(root context.Context, opts Options) *Runner {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Recorder == nil {
		opts.Recorder = nopRecorder{}
	}
	r := &Runner{opts: opts, log: log, root: root, jobs: map[string]*Job{}, busy: map[string]*hold{}, usage: map[string]control.TargetInfo{}, untrusted: map[string]int{}}
	r.recovery = recovery.New(recovery.Options{Catalog: opts.Catalog, API: opts.API, Owner: opts.Owner, Targets: opts.Targets,
		Keys: opts.Keys, Notifier: opts.Notifier, Log: log})
	return r
}

type nopRecorder struct{}

func (nopRecorder) RunFinished(control.JobID, bool, time.Duration, int64)        {}
func (nopRecorder) Pruned(string, int, bool)                                     {}
func (nopRecorder) RestoreFinished(string, string, control.Outcome, bool)        {}
func (nopRecorder) VerifyFinished(control.JobID, control.Outcome, time.Duration) {}

// Recovery is what finishes what a crash of the sidecar left (package recovery).
func (r *Runner) Recovery() *recovery.Recovery { return r.recovery }

// TargetNames lists the targets, sorted.
func (r *Runner) TargetNames() []string {
	names := make([]string, 0, len(r.opts.Targets))
	for n := range r.opts.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Sync brings the scheduled jobs in step with want (by key): new jobs are added, changed
// ones replaced, removed ones dropped. It returns the problems it met (a job the catalog or
// the scheduler refused).
func (r *Runner) Sync(ctx context.Context, want map[string]*Job) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var problems []string
	for key := range r.jobs {
		if _, ok := want[key]; !ok {
			r.opts.Scheduler.Remove(key)
			r.opts.Scheduler.Remove(verifyKey(key))
			delete(r.jobs, key)
			r.log.Info("job removed", "job", key)
		}
	}
	for key, j := range want {
		old, ok := r.jobs[key]
		if ok && old.Fingerprint == j.Fingerprint {
			continue
		}
		// The catalog knows a member of a job with several targets as JOB@TARGET.
		name := j.Name
		if j.Leader != "" {
			name = memberOf(j.Name, j.TargetName())
		}
		id, err := r.opts.Catalog.UpsertJob(ctx, catalog.Job{Project: j.Project, Service: j.Service, Name: name, Strategy: j.Strategy,
			Schedule: j.Schedule, Target: j.TargetName()})
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		j.catalogID = id
		if j.Leader != "" {
			r.opts.Scheduler.Remove(key) // its leader's runs write to it
		} else if err := r.opts.Scheduler.Set(key, j.Schedule, func(ctx context.Context) error {
			_, err := r.RunJob(ctx, key, nil)
			return err
		}); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if j.Verify == "" {
			r.opts.Scheduler.Remove(verifyKey(key))
		} else if err := r.opts.Scheduler.Set(verifyKey(key), j.Verify, func(ctx context.Context) error {
			_, err := r.VerifyJob(ctx, key, nil)
			return err
		}); err != nil {
			problems = append(problems, err.Error())
		}
		if ok {
			r.log.Info("job changed", "job", key, "schedule", j.Schedule, "strategy", j.Strategy, "target", j.TargetName())
		} else {
			r.log.Info("job added", "job", key, "schedule", j.Schedule, "strategy", j.Strategy, "target", j.TargetName())
		}
		r.jobs[key] = j
	}
	return problems
}

// Jobs returns the scheduled jobs, sorted by key.
func (r *Runner) Jobs() []*Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Job, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key() < out[b].Key() })
	return out
}

// Running reports whether the job's service is busy with it now.
func (r *Runner) Running(j *Job) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.busy[j.Project+"/"+j.Service]
	return ok && h.what == "backup "+j.runKey()
}

// hold is one operation holding a service; released is closed when it ends.
type hold struct {
	what     string
	released chan struct{}
}

// lock holds the service for one operation: no two backups or restores of a service ever
// run at once. An operation that finds the service busy waits for it (saying so in log)
// until ctx ends.
func (r *Runner) lock(ctx context.Context, project, service, what string, log *slog.Logger) (func(), error) {
	key := project + "/" + service
	waited := false
	for {
		r.mu.Lock()
		h, busy := r.busy[key]
		if !busy {
			mine := &hold{what: what, released: make(chan struct{})}
			r.busy[key] = mine
			r.mu.Unlock()
			return func() {
				r.mu.Lock()
				delete(r.busy, key)
				r.mu.Unlock()
				close(mine.released)
			}, nil
		}
		r.mu.Unlock()
		if !waited {
			log.Info("waiting for the "+h.what+" to finish", "service", key)
			waited = true
		}
		select {
		case <-h.released:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s was busy with the %s until it was too late: %w", key, h.what, ctx.Err())
		}
	}
}

// manualContext is the context of an operation asked for by the plugin: it outlives the
// plugin's connection, ends with the sidecar or after the run timeout. Call done after.
func (r *Runner) manualContext() (context.Context, func()) {
	r.manual.Add(1)
	ctx, cancel := context.WithCancel(r.root)
	if r.opts.Timeout > 0 {
		ctx, cancel = context.WithTimeout(r.root, r.opts.Timeout)
	}
	return ctx, func() { cancel(); r.manual.Done() }
}

// Wait waits for the operations asked for by the plugin to end (their containers started
// again), or for ctx.
func (r *Runner) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.manual.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runs asked for by the plugin still running after stop")
	}
}

// guard records in the catalog every container an operation stops, before it stops it, and
// forgets it once started again: recovery after a crash starts what is left.
type guard struct {
	cat       *catalog.Catalog
	operation string
	mu        sync.Mutex
	ids       map[string]int64
}

func newGuard(cat *catalog.Catalog, operation string) *guard {
	return &guard{cat: cat, operation: operation, ids: map[string]int64{}}
}

func (g *guard) Stopping(ctx context.Context, c *containers.Container) error {
	stop := catalog.Stop{Container: c.ID, Name: c.Name, StoppedAt: time.Now(), Operation: g.operation}
	if c.Scaled != nil {
		stop.ServiceID, stop.Replicas, stop.Name = c.Scaled.ServiceID, c.Scaled.Replicas, c.Scaled.Name
	}
	id, err := g.cat.Stopping(context.WithoutCancel(ctx), stop)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.ids[c.ID] = id
	g.mu.Unlock()
	return nil
}

func (g *guard) Started(ctx context.Context, c *containers.Container) {
	g.mu.Lock()
	id, ok := g.ids[c.ID]
	delete(g.ids, c.ID)
	g.mu.Unlock()
	if ok {
		_ = g.cat.Started(context.WithoutCancel(ctx), id)
	}
}

// stoppingErr adds why an operation ended to its error when the sidecar is stopping.
func (r *Runner) stoppingErr(err error) error {
	if err != nil && r.root.Err() != nil {
		return fmt.Errorf("cancelled because the sidecar is stopping: %w", err)
	}
	return err
}
