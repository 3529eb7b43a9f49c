// Package plan plans and runs the backup and the restore of one service, the one way both
// front ends — the docker backup plugin and the sidecar — do it: find the service's
// container, choose and check the strategy, run the hooks, stop and start the service and the
// containers that depend on it (with every stop reported to a containers.Guard first, so a
// crash never leaves them stopped), stream to or from the target through the pipeline, sign
// or verify the manifest, and warn about versions. The sidecar adds only scheduling, the
// catalog, retention, metrics and its control API; the plugin adds only its flags and output.
package plan

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
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/containers/dependents"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// DefaultHookTimeout bounds a pre or post command that sets no timeout of its own.
const DefaultHookTimeout = 5 * time.Minute

// hookEndGrace is how long a hook past its timeout (or whose run was cancelled) has between
// SIGTERM and SIGKILL.
const hookEndGrace = 5 * time.Second

// BackupSpec is what to back up, how and where.
type BackupSpec struct {
	// Container is the service's container (see Find).
	Container *containers.Container
	// Strategy names the strategy; empty: detected (and an excluded service is refused).
	Strategy string
	Options  strategy.Options
	Target   target.Target
	// Targets, when set, replaces Target: one backup streamed to every one at once; a result
	// with a pipeline.TargetsError is stored on some of them.
	Targets []pipeline.Destination
	// Compression defaults to zstd.
	Compression artifact.Compression
	// Job names the sidecar job (recorded in the manifest and the key); empty by hand.
	Job string
	// Stop stops the service, and the running containers that depend on it (compose
	// depends_on, the furthest first), for the backup; they are started again on every path.
	Stop bool
	// Pre and Post are commands run in the container before and after (Post always runs,
	// as the clean-up of Pre), each bounded by HookTimeout.
	Pre, Post   []string
	HookTimeout time.Duration
	// Signer signs the manifest; nil: unsigned.
	Signer *artifact.SigningKey
	// Encrypt encrypts the artifact for these recipients (age); empty: not encrypted.
	Encrypt *crypt.Recipients
	// Guard is told of every container stopped, before it is stopped.
	Guard containers.Guard
	// Incremental, when set, makes the backup a snapshot in the target's repository.
	Incremental *Incremental
	// At is the backup's time (the key's stamp); zero: now.
	At       time.Time
	Progress func(rawBytes int64)
	Log      *slog.Logger
}

// Backup is a planned backup: what will be backed up, with what, where to, and what stops.
type Backup struct {
	Container *containers.Container
	Strategy  strategy.Strategy
	// Detected says why the strategy was chosen when it was not given.
	Detected string
	// Key is where the artifact will be stored.
	Key string
	// Dependents are the containers stopped before the service, in the order they stop.
	Dependents []*containers.Container
	spec       BackupSpec
}

// NewBackup plans a backup: it checks the service may be backed up, chooses the strategy and
// names the artifact. Nothing is touched yet.
func NewBackup(ctx context.Context, api containers.API, spec BackupSpec) (*Backup, error) {
	c := spec.Container
	if spec.Log == nil {
		spec.Log = slog.New(slog.DiscardHandler)
	}
	if spec.Compression == "" {
		spec.Compression = artifact.Zstd
	}
	if spec.At.IsZero() {
		spec.At = time.Now()
	}
	if spec.HookTimeout <= 0 {
		spec.HookTimeout = DefaultHookTimeout
	}
	b := &Backup{Container: c, spec: spec}
	name := spec.Strategy
	if name == "" {
		if reason := labels.Excluded(c.Labels); reason != "" {
			return nil, fmt.Errorf("%s is not backed up (%s)", c, reason)
		}
		cands := detect.All(ctx, c)
		if len(cands) == 0 {
			return nil, fmt.Errorf("cannot tell how to back up %s (image %s): no database recognised and no volumes; choose the strategy (%s, or the label %s)",
				c, c.Image, strings.Join(strategies.Names(), ", "), labels.Strategy)
		}
		name, b.Detected = cands[0].Strategy, cands[0].Reason
	}
	opts := spec.Options
	opts.Log = spec.Log
	if strategies.Canonical(name) == "sqlite" && opts.Database == "" {
		msg := "the sqlite strategy needs the database file: pass --database /path/in/container/app.db (label docker-backup.database)"
		if files := detect.SQLiteFiles(ctx, c); len(files) > 0 {
			msg += " (SQLite files in " + c.Name + ": " + strings.Join(files, ", ") + ")"
		}
		return nil, errors.New(msg)
	}
	strat, err := strategies.New(name, opts)
	if err != nil {
		return nil, err
	}
	b.Strategy = strat
	b.Key = artifact.Key(artifact.KeyParts{Project: c.Project, Service: ServiceName(c), Job: spec.Job, Strategy: strat.Name(),
		Ext: strat.Extension(), Compression: spec.Compression, Encrypted: !spec.Encrypt.Empty(), At: spec.At})
	if spec.Stop {
		if b.Dependents, err = dependents.Of(ctx, api, c); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Run runs the planned backup: pre command, stop, stream, start, post command. A non-nil
// result with an error means the backup is stored but the post command failed, or (a
// pipeline.TargetsError) that it is stored on some of the targets only.
func (b *Backup) Run(ctx context.Context) (*pipeline.BackupResult, error) {
	spec, c, log := b.spec, b.Container, b.spec.Log
	c.SetGuard(spec.Guard)
	for _, d := range b.Dependents {
		d.SetGuard(spec.Guard)
	}
	var preErr error
	if len(spec.Pre) > 0 {
		if preErr = b.hook(ctx, "pre", spec.Pre); preErr != nil {
			preErr = fmt.Errorf("pre command failed, nothing was backed up: %w", preErr)
		}
	}
	var res *pipeline.BackupResult
	var err error
	if preErr == nil {
		if len(b.Dependents) > 0 {
			names := make([]string, len(b.Dependents))
			for i, d := range b.Dependents {
				names[i] = d.Name
			}
			log.Info("stopping the containers that depend on the service first", "containers", strings.Join(names, ", "))
		}
		err = dependents.WhileAllStopped(ctx, log, b.Dependents, func(ctx context.Context) error {
			run := func(ctx context.Context) error {
				var err error
				if spec.Incremental != nil {
					res, err = b.snapshot(ctx)
					return err
				}
				res, err = pipeline.Backup(ctx, pipeline.BackupRequest{Container: c, Strategy: b.Strategy, Target: spec.Target, Targets: spec.Targets,
					Compression: spec.Compression, Key: b.Key, Job: spec.Job, Signer: spec.Signer, Encrypt: spec.Encrypt, Progress: spec.Progress, Log: log})
				return err
			}
			if spec.Stop {
				return c.WhileStopped(ctx, log, run)
			}
			return run(ctx)
		})
		var partial *pipeline.TargetsError
		if err != nil && !errors.As(err, &partial) {
			res = nil
		}
	}
	if len(spec.Post) > 0 {
		// The post command is the clean-up of the pre command: it runs whatever happened.
		if perr := b.hook(context.WithoutCancel(ctx), "post", spec.Post); perr != nil {
			err = errors.Join(err, fmt.Errorf("post command failed: %w", perr))
		}
	}
	if res != nil {
		// What interrupted backups of the service left long ago (a killed plugin's temporary
		// file, an artifact without its manifest) goes now.
		dir := artifact.Dir(c.Project, ServiceName(c)) + "/"
		targets := spec.Targets
		if len(targets) == 0 {
			targets = []pipeline.Destination{{Name: spec.Target.String(), Target: spec.Target}}
		}
		for _, d := range targets {
			if _, failed := res.Failed[d.Name]; failed {
				continue
			}
			if removed, serr := listing.Sweep(ctx, d.Target, dir); serr != nil {
				log.Warn("could not remove what interrupted backups left", "target", d.Name, "dir", dir, "error", serr)
			} else {
				for _, k := range removed {
					log.Info("removed what an interrupted backup left", "target", d.Name, "key", k)
				}
			}
		}
	}
	return res, errors.Join(preErr, err)
}

// hook runs a pre or post command in the container, its output going to the log, within the
// hook timeout: a hung command must not hold the run for the run's whole timeout.
func (b *Backup) hook(ctx context.Context, which string, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, b.spec.HookTimeout)
	defer cancel()
	c, log := b.Container, b.spec.Log
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	log.Info("running the "+which+" command", "command", strings.Join(argv, " "))
	out := lineLogger(log, which+" output")
	defer out.Close()
	err := c.Exec(ctx, containers.ExecSpec{Cmd: argv, Stdout: out, Stderr: out, EndGrace: hookEndGrace})
	if ctx.Err() == context.DeadlineExceeded {
		msg := fmt.Sprintf("%s did not finish within %s (the hook timeout)", argv[0], b.spec.HookTimeout)
		if cerr, ok := errors.AsType[*containers.CancelledError](err); ok && cerr.Ended != "" {
			msg += "; " + cerr.Ended
		}
		return errors.New(msg)
	}
	return err
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
	return pipeCloser{pw, done}
}

type pipeCloser struct {
	*io.PipeWriter
	done chan struct{}
}

func (c pipeCloser) Close() error {
	err := c.PipeWriter.Close()
	<-c.done
	return err
}

// ServiceName is the name a container's backups are filed under: its compose service, or
// its container name outside compose.
func ServiceName(c *containers.Container) string {
	if c.Service != "" {
		return c.Service
	}
	return c.Name
}
