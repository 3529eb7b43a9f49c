package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// ErrBusy is returned when a job is asked to run while it is already running.
var ErrBusy = errors.New("the job is already running")

// RunJob runs the job named key (project/service/job) now: pre hook, stop (with the
// containers that depend on it), backup, start, post hook, catalog, then retention. extra,
// when set, also receives the run's log (the plugin's `run` streams it).
func (d *Daemon) RunJob(ctx context.Context, key string, extra slog.Handler) (*control.Result, error) {
	d.mu.Lock()
	j, ok := d.jobs[key]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no job %s (jobs: %s)", key, strings.Join(d.jobNames(), ", "))
	}
	return d.run(ctx, j, extra)
}

// run runs j now; see RunJob.
func (d *Daemon) run(ctx context.Context, j *job, extra slog.Handler) (*control.Result, error) {
	key := j.Key()
	select {
	case j.running <- struct{}{}:
	default:
		return nil, fmt.Errorf("%s: %w", key, ErrBusy)
	}
	defer func() { <-j.running }()

	log := d.log.With("job", key)
	if extra != nil {
		log = slog.New(slog.NewMultiHandler(d.log.Handler(), extra)).With("job", key)
	}
	started := time.Now()
	info := j.Info()
	if !j.adhoc {
		d.obs.RunStarted(info)
	}
	res, runID, artifactKey, err := d.backup(ctx, j, log, started)
	if err != nil && d.root != nil && d.root.Err() != nil {
		err = fmt.Errorf("cancelled because the sidecar is stopping: %w", err)
	}
	outcome := RunOutcome{Success: err == nil, Started: started, Duration: time.Since(started)}
	finish := catalog.Run{ID: runID, FinishedAt: time.Now()}
	if err != nil {
		finish.Status, finish.Error = catalog.Failed, err.Error()
		if res != nil { // stored, but a post hook failed: the backup stays, the run fails
			finish.ArtifactKey, finish.Size, finish.SHA256 = res.Key, res.Manifest.Size, res.Manifest.SHA256
		} else if artifactKey != "" {
			// The target may have kept part of the upload (S3 down while aborting it):
			// remove it once the target answers again.
			finish.Cleanup = artifactKey
		}
	} else {
		finish.Status = catalog.Success
		finish.ArtifactKey, finish.Size, finish.SHA256 = res.Key, res.Manifest.Size, res.Manifest.SHA256
		outcome.Size = res.Manifest.Size
	}
	if runID != 0 && !j.adhoc {
		if cerr := d.cat.FinishRun(context.WithoutCancel(ctx), finish); cerr != nil {
			log.Error("recording the run failed", "error", cerr)
		}
	}
	d.cleanUp(ctx)
	if !j.adhoc {
		d.obs.RunFinished(info, outcome)
		d.obs.JobScheduled(info, d.sched.Next(key), j.Schedule)
	}
	if err != nil {
		log.Error("backup failed; older backups are untouched and retention did not run", "error", err)
		return nil, err
	}
	log.Info("backup done", "key", res.Key, "size", res.Manifest.Size, "duration", outcome.Duration.Round(time.Millisecond).String())
	// Retention only ever runs after a successful backup.
	pruned, perr := d.prune(ctx, j, log)
	if j.Retention == (retention.Policy{}) {
		d.updateUsage(ctx, j.target())
	}
	// A prune error is reported, but the backup stands.
	return &control.Result{Key: res.Key, Target: j.target(), Duration: outcome.Duration, Manifest: res.Manifest, Pruned: pruned}, perr
}

// backup does the work of a run; the run is in the catalog from before anything is stopped.
// A non-nil result with an error means the backup is stored but a post hook failed. key is
// where the artifact was to go, once known.
func (d *Daemon) backup(ctx context.Context, j *job, log *slog.Logger, started time.Time) (res *engine.BackupResult, runID int64, key string, err error) {
	res, runID, err = d.backupTo(ctx, j, log, started, &key)
	return res, runID, key, err
}

func (d *Daemon) backupTo(ctx context.Context, j *job, log *slog.Logger, started time.Time, keyOut *string) (*engine.BackupResult, int64, error) {
	tgt := d.targets[j.target()]
	c, err := containers.Find(ctx, d.api, j.Project, j.Service)
	if err != nil && j.Project == "" {
		c, err = containers.Inspect(ctx, d.api, j.Container)
	}
	record := func(key, stopped string) (int64, error) {
		if j.adhoc {
			return 0, nil
		}
		return d.cat.StartRun(ctx, catalog.Run{JobID: j.ID, StartedAt: started, ArtifactKey: key, StoppedContainer: stopped})
	}
	if err != nil {
		id, _ := record("", "")
		return nil, id, err
	}
	name := j.Strategy
	if name == "" {
		cands := detect.All(ctx, c)
		if len(cands) == 0 {
			id, _ := record("", "")
			return nil, id, fmt.Errorf("cannot tell how to back up %s (image %s): set docker-backup.strategy", c, c.Image)
		}
		name = cands[0].Strategy
		log.Info("strategy detected", "strategy", name, "reason", cands[0].Reason)
	}
	strat, err := strategy.New(name, strategy.Options{Database: j.Database, Paths: j.Paths, Log: log})
	if err != nil {
		id, _ := record("", "")
		return nil, id, err
	}
	key := artifact.Key(c.Project, engine.ServiceName(c), strat.Name(), strat.Extension(), d.cfg.Compression, started)
	*keyOut = key

	var dependents []*containers.Container
	var stopped []string
	if j.Stop {
		if dependents, err = containers.Dependents(ctx, d.api, c); err != nil {
			id, _ := record(key, "")
			return nil, id, err
		}
		if c.Running {
			stopped = append(stopped, c.ID)
		}
		for i := len(dependents) - 1; i >= 0; i-- { // the order to start them again
			stopped = append(stopped, dependents[i].ID)
		}
	}
	runID, err := record(key, strings.Join(stopped, ","))
	if err != nil {
		return nil, 0, err
	}

	var hookErr error
	if len(j.Pre) > 0 {
		if hookErr = d.hook(ctx, c, "pre", j.Pre, log); hookErr != nil {
			hookErr = fmt.Errorf("pre command failed, nothing was backed up: %w", hookErr)
		}
	}
	var res *engine.BackupResult
	if hookErr == nil {
		if len(dependents) > 0 {
			names := make([]string, len(dependents))
			for i, dep := range dependents {
				names[i] = dep.Name
			}
			log.Info("stopping the containers that depend on the service first", "containers", strings.Join(names, ", "))
		}
		err = containers.WhileAllStopped(ctx, log, dependents, func(ctx context.Context) error {
			var err error
			res, err = engine.Backup(ctx, engine.BackupRequest{Container: c, Strategy: strat, Target: tgt, Compression: d.cfg.Compression,
				StopContainer: j.Stop, Key: key, Job: j.manifestJob(), Log: log})
			return err
		})
		if err != nil {
			res = nil
		}
	}
	if len(j.Post) > 0 {
		// The post command is the cleanup of the pre command: it runs whatever happened.
		postCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		if perr := d.hook(postCtx, c, "post", j.Post, log); perr != nil {
			err = errors.Join(err, fmt.Errorf("post command failed: %w", perr))
		}
		cancel()
	}
	return res, runID, errors.Join(hookErr, err)
}

// hook runs a pre or post command in the container, its output going to the run's log.
func (d *Daemon) hook(ctx context.Context, c *containers.Container, which string, argv []string, log *slog.Logger) error {
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	log.Info("running the "+which+" command", "command", strings.Join(argv, " "))
	out := lineLogger(log, which+" output")
	defer out.Close()
	return c.Exec(ctx, containers.ExecSpec{Cmd: argv, Stdout: out, Stderr: out})
}

// lineLogger logs each line written to it.
func lineLogger(log *slog.Logger, msg string) io.WriteCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			log.Info(msg, "line", sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return closer{pw, done}
}

type closer struct {
	*io.PipeWriter
	done chan struct{}
}

func (c closer) Close() error {
	err := c.PipeWriter.Close()
	<-c.done
	return err
}

func (d *Daemon) jobNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sortedKeys(d.jobs)
}

// jobFor finds the job a run request means, or makes a one-off job for a service that has
// none (detected strategy, default target, no retention).
func (d *Daemon) jobFor(ctx context.Context, req control.RunRequest) (*job, error) {
	d.mu.Lock()
	var matches []*job
	var names []string
	for _, k := range sortedKeys(d.jobs) {
		j := d.jobs[k]
		if j.Project == req.Project && j.Service == req.Service {
			names = append(names, j.Name)
			if req.Job == "" || req.Job == j.Name {
				matches = append(matches, j)
			}
		}
	}
	d.mu.Unlock()
	if len(matches) > 1 && req.Job == "" {
		for _, j := range matches {
			if j.Name == labels.DefaultJob {
				return j, nil // SERVICE alone means its default job
			}
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) > 1:
		return nil, fmt.Errorf("service %s has several jobs (%s): choose one as %s/JOB", req.Service, strings.Join(names, ", "), req.Service)
	case req.Job != "" && len(names) > 0:
		return nil, fmt.Errorf("service %s has no job %q (its jobs: %s)", req.Service, req.Job, strings.Join(names, ", "))
	case req.Job != "":
		return nil, fmt.Errorf("service %s has no scheduled jobs, so no job %q", req.Service, req.Job)
	}
	c, err := containers.Find(ctx, d.api, req.Project, req.Service)
	if err != nil {
		return nil, err
	}
	if reason := detect.Excluded(c); reason != "" {
		return nil, fmt.Errorf("%s is not backed up (%s)", c, reason)
	}
	j := &job{Project: c.Project, Service: c.Service, Container: c.Name, adhoc: true, running: make(chan struct{}, 1)}
	// A service labelled without a schedule: its labels (strategy, paths, database, stop,
	// hooks, target) still say how to back it up.
	lbls := maps(c.Labels)
	lbls[labels.Prefix+"schedule"] = "@daily"
	parsed, errs := labels.Parse(c.Name, lbls, labels.Options{Strategies: strategy.Names(), Targets: d.cfg.TargetNames()})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	for _, lj := range parsed {
		if lj.Name == labels.DefaultJob {
			j.Job = lj
		}
	}
	j.Name, j.Schedule, j.Retention = "manual", "", retention.Policy{}
	return j, nil
}
