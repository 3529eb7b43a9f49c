// Package sidecar is the long-running docker-backup service, wired from its parts: config
// (the environment), reconcile (labels and events → jobs), jobs (runs, restores, retention,
// recovery, the catalog's backup), server (the control socket and /metrics) and the metrics.
// It adds only the wiring and the status that combines them.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/sidecar/config"
	"github.com/docker-backup/docker-backup/internal/sidecar/jobs"
	"github.com/docker-backup/docker-backup/internal/sidecar/reconcile"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/moby/moby/client"
)

// API is the part of the Engine API the sidecar uses.
type API interface {
	scratch.Engine
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// Daemon is a running sidecar.
type Daemon struct {
	api      API
	cfg      config.Config
	log      *slog.Logger
	cat      *catalog.Catalog
	sched    *schedule.Scheduler
	notifier *notify.Notifier
	targets  map[string]target.Target
	signer   *artifact.SigningKey
	keys     *artifact.Keyring // what restores, verifies, listings and retention trust
	runner   *jobs.Runner
	rec      *reconcile.Reconciler
	host     string
	node     swarm.Node // the Swarm node this Engine is; Active false outside Swarm
	swarmAPI swarm.API  // a manager's API; nil outside Swarm or on a worker without one
	// inStack: the sidecar is a Swarm stack's task (a compose project's sidecar on an Engine
	// in swarm mode is not: its prefix and catalog stay as they were)
	inStack bool
	self    string
	started time.Time
	// synced is closed once the first reconcile is done: the control API waits for it, so a
	// request never sees a sidecar that has not read the labels yet.
	synced chan struct{}
	// owner labels the scratch and worker containers this sidecar's life makes.
	owner string
	// recorder counts the repositories' checks (nil: not counted).
	recorder checkRecorder
}

// Options are what New needs besides the configuration.
type Options struct {
	API      API
	Log      *slog.Logger
	Recorder jobs.Recorder // nil: none
}

// New connects the pieces: it identifies the sidecar's container and project, opens the
// targets, the signing key and the catalog, and recovers what a crash left behind. Run
// starts the work.
func New(ctx context.Context, cfg config.Config, opts Options) (*Daemon, error) {
	d := &Daemon{api: opts.API, cfg: cfg, log: opts.Log, started: time.Now(), synced: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if err := d.identify(ctx); err != nil {
		return nil, err
	}
	if err := d.openTargets(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w", cfg.StateDir, err)
	}
	if err := d.openKey(); err != nil {
		return nil, err
	}
	var ids crypt.Identities
	if cfg.AgeIdentityFile != "" {
		if err := ids.AddFile(cfg.AgeIdentityFile); err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvAgeIdentityFile, err)
		}
	}
	owner := scratch.SidecarOwner(d.self)
	d.owner = owner
	dbPath := filepath.Join(cfg.StateDir, "catalog.db")
	_, statErr := os.Stat(dbPath)
	fresh := errors.Is(statErr, os.ErrNotExist)
	var err error
	if d.cat, err = catalog.Open(ctx, dbPath); err != nil {
		return nil, err
	}
	d.sched = schedule.NewScheduler(schedule.SchedulerOptions{MaxConcurrent: cfg.MaxConcurrent, Timeout: cfg.Timeout, Jitter: cfg.Jitter,
		Location: cfg.Location, Log: d.log})
	d.recorder, _ = opts.Recorder.(checkRecorder)
	counted := func(string, bool) {}
	if c, ok := opts.Recorder.(interface{ Notified(kind string, ok bool) }); ok {
		counted = c.Notified
	}
	if d.notifier, err = notify.New(notify.Config{Sets: cfg.NotifySets, Level: cfg.NotifyLevel, Template: cfg.NotifyTemplate,
		Host: d.host, Counted: counted, Log: d.log}); err != nil {
		d.cat.Close()
		return nil, err
	}
	var wk strategy.Worker
	if we, ok := d.api.(worker.Engine); ok && cfg.Worker != worker.ModeOff {
		wk = &worker.Runner{Engine: we, Image: workerimage.ContainerImage(d.api, d.self, d.log), Owner: owner, Log: d.log,
			Channel: func(ctx context.Context) (*worker.Channel, error) {
				return worker.ContainerChannel(ctx, d.api, d.self, filepath.Join(cfg.StateDir, "workers"))
			}}
	}
	d.runner = jobs.New(ctx, jobs.Options{Worker: wk, RequireWorker: cfg.Worker == worker.ModeOn, API: d.api, Catalog: d.cat, Scheduler: d.sched, Targets: d.targets, UploadLimit: cfg.UploadLimit, Compression: cfg.Compression,
		Location: cfg.Location, Timeout: cfg.Timeout, HookTimeout: cfg.HookTimeout, Signer: d.signer, Keys: d.keys, Recipients: cfg.AgeRecipients,
		Identities: &ids, Recorder: opts.Recorder, Log: d.log,
		Project: d.cfg.Project, AllProjects: d.cfg.AllProjects, Node: d.nodeName(), StateDir: cfg.StateDir, Owner: owner, Notifier: d.notifier,
		RepositoryKeys: d.repoKeys()})
	d.rec = reconcile.New(reconcile.Options{API: d.api, Project: d.cfg.Project, AllProjects: d.cfg.AllProjects, Self: d.self, Node: d.node, SwarmAPI: d.swarmAPI,
		Targets: d.runner.TargetNames(), NotifySets: d.notifier.Sets(), DefaultRetention: cfg.DefaultRetention, DefaultSchedule: cfg.DefaultSchedule, Resync: cfg.Resync,
		OnResync: d.runner.UpdateUsage, Syncer: d.runner, Log: d.log,
		OnProblem: func(p string) {
			d.notifier.Notify("", notify.Event{Kind: "labels", Project: d.cfg.Project, Failed: true, Error: p})
		}})
	if err := d.runner.Recovery().Recover(ctx); err != nil {
		d.cat.Close()
		return nil, err
	}
	if fresh {
		// A new catalog next to existing backups (a new host, a lost volume): learn them.
		if n, err := d.runner.Rebuild(ctx); err != nil {
			d.log.Warn("rebuilding the catalog from the targets failed", "error", err)
		} else if n > 0 {
			d.log.Info("catalog rebuilt from the targets' manifests", "backups", n)
		}
	}
	return d, nil
}

// identify finds the sidecar's Engine (its name; the Swarm node it is, and a manager's API),
// its own container and the project it manages.
func (d *Daemon) identify(ctx context.Context) error {
	info, err := d.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("asking the Docker engine for its name: %w", err)
	}
	d.host = info.Info.Name
	if d.node, err = swarm.LocalNode(ctx, d.api); err != nil {
		return err
	}
	if sa, ok := d.api.(swarm.API); ok && d.node.Active && (d.node.Manager || d.cfg.SwarmManager != "") {
		d.swarmAPI = sa
	}
	if self, err := d.findSelf(ctx); err != nil {
		d.log.Warn("cannot find the sidecar's own container", "error", err)
	} else {
		d.self = self.ID
		if d.cfg.Project == "" && !d.cfg.AllProjects {
			d.cfg.Project = self.Project
		}
		lbls := self.Labels
		if self.Task != nil && d.node.Active {
			d.inStack = true
			// A stack's sidecar may have its labels on its service (deploy.labels).
			if merged, err := swarm.NewView(d.swarmAPI, d.node).Labels(ctx, self.Task, self.Labels); err == nil {
				lbls = merged
			}
		}
		if err := d.cfg.AddLabelTargets(lbls); err != nil {
			return err
		}
	}
	if d.cfg.Project == "" && !d.cfg.AllProjects {
		return fmt.Errorf("cannot tell which compose project to manage: the sidecar is not in one; set %s=NAME, or %s=all for every project", config.EnvProject, config.EnvScope)
	}
	return nil
}

// keyPrefix is the prefix of a target's keys: the one configured, else on a remote target
// (shared by hosts) the host's name, one prefix each. A stack's sidecar has none: the nodes of
// a swarm share theirs, a stack's tasks move between them. A compose project's sidecar keeps
// its host's even on an Engine in a swarm: compose projects of the same name on two hosts
// must not write to, and prune, each other's keys.
func keyPrefix(configured *string, remote, inStack bool, host string) string {
	switch {
	case configured != nil:
		return *configured
	case remote && !inStack:
		return jobs.KeyPart(host)
	}
	return ""
}

func (d *Daemon) openTargets() error {
	d.targets = map[string]target.Target{}
	for _, name := range d.cfg.TargetNames() {
		url := d.cfg.Targets[name]
		t, err := targets.OpenWith(url, d.cfg.CredentialsEnv(name))
		if err != nil {
			return fmt.Errorf("target %s (%s): %w", name, url, err)
		}
		_, remote := targets.Lookup(url)
		if t, err = target.Sub(t, keyPrefix(d.cfg.Prefix, remote, d.inStack, d.host)); err != nil {
			return fmt.Errorf("target %s: %w", name, err)
		}
		d.targets[name] = t
	}
	for name := range d.cfg.TargetLimits {
		if d.targets[name] == nil {
			return fmt.Errorf("%s%s sets the upload cap of the target %s, which is not defined (targets: %s)", config.EnvTarget, limitVarPart(name), name, strings.Join(d.cfg.TargetNames(), ", "))
		}
	}
	return nil
}

// limitVarPart is the part of the upload cap's variable of the target name after
// DOCKER_BACKUP_TARGET.
func limitVarPart(name string) string {
	if name == "default" {
		return config.SuffixLimitUpload
	}
	return "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + config.SuffixLimitUpload
}

// openKey loads the signing key, or makes one in the state directory on first start, and
// the public keys of other hosts whose backups this sidecar trusts.
func (d *Daemon) openKey() error {
	if err := d.loadSigner(); err != nil {
		return err
	}
	d.keys = artifact.NewKeyring(d.signer, d.cfg.TrustedKeys...)
	d.log.Info("signing key", "key", d.signer.ID(), "public", d.signer.Public().String(), "trusted", len(d.cfg.TrustedKeys))
	return nil
}

func (d *Daemon) loadSigner() error {
	if d.cfg.SigningKeyFile != "" {
		k, err := artifact.LoadSigningKey(d.cfg.SigningKeyFile)
		if err != nil {
			return fmt.Errorf("%s: %w", config.EnvSigningKeyFile, err)
		}
		d.signer = k
		return nil
	}
	file := filepath.Join(d.cfg.StateDir, "signing.key")
	k, created, err := artifact.LoadOrCreateSigningKey(file)
	if err != nil {
		return err
	}
	if created {
		d.log.Warn("made a new signing key in the state directory: keep a copy (or give one with "+config.EnvSigningKeyFile+"), restores need it to trust this sidecar's backups", "key", k.ID(), "file", file)
	}
	d.signer = k
	return nil
}

// findSelf finds the sidecar's container: by host name (Docker's default is the short
// container ID), else by the container ID in the mount table.
func (d *Daemon) findSelf(ctx context.Context) (*containers.Container, error) {
	var candidates []string
	if h, err := os.Hostname(); err == nil {
		candidates = append(candidates, h)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if m := containerID.FindSubmatch(b); m != nil {
			candidates = append(candidates, string(m[1]))
		}
	}
	for _, id := range candidates {
		c, err := containers.Inspect(ctx, d.api, id)
		if err == nil && labels.IsSidecar(c.Labels) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no container with the %s label matches this process (tried %s)", labels.Sidecar, strings.Join(candidates, ", "))
}

var containerID = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

// Run schedules the jobs and keeps them in step with the labels until ctx ends, then waits
// for running jobs to stop (their containers are started again).
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.rec.Reconcile(ctx); err != nil {
		d.log.Error("first reconcile failed; retrying on events and every resync", "error", err)
	}
	close(d.synced)
	if d.cfg.CatalogBackup != "" {
		if err := d.sched.Set(jobs.CatalogJobName, d.cfg.CatalogBackup, d.runner.BackupCatalog); err != nil {
			return err
		}
	}
	if d.cfg.CheckSchedule != "" {
		if err := d.sched.Set(checkJobName, d.cfg.CheckSchedule, d.checkRepositories); err != nil {
			return err
		}
	}
	d.runner.UpdateUsage(ctx)
	d.sched.Start()
	go d.runner.Recovery().Keep(ctx)
	d.log.Info("sidecar running", "scope", d.scope(), "targets", d.targetDescriptions(), "jobs", len(d.runner.Jobs()), "signing_key", d.signer.ID())
	d.rec.Watch(ctx)
	stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := errors.Join(d.sched.Stop(stopCtx), d.runner.Wait(stopCtx))
	// Whatever the ended operations left of their scratch copies and workers (a volume held
	// by a worker being removed, one created as the stop came) goes before the sidecar does.
	if serr := scratch.Sweep(context.WithoutCancel(ctx), d.api, d.owner, d.log); serr != nil {
		d.log.Warn("could not remove every scratch and worker container of this sidecar", "error", serr)
	}
	// What the last runs said is sent before the sidecar goes (bounded: a receiver that
	// does not answer cannot hold the shutdown).
	notifyCtx, cancelNotify := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelNotify()
	if nerr := d.notifier.Close(notifyCtx); nerr != nil {
		d.log.Warn("notifications left unsent", "error", nerr)
	}
	return err
}

// Close closes the catalog.
func (d *Daemon) Close() error { return d.cat.Close() }

// CatalogHealthy reports whether the catalog answers.
func (d *Daemon) CatalogHealthy(ctx context.Context) error { return d.cat.Ping(ctx) }

// Ready reports whether the Docker engine answers and the catalog is open.
func (d *Daemon) Ready(ctx context.Context) error {
	if _, err := d.api.Info(ctx, client.InfoOptions{}); err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	if err := d.cat.Ping(ctx); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// ControlSocket is the path of the control socket.
func (d *Daemon) ControlSocket() string { return filepath.Join(d.cfg.StateDir, control.SocketName) }

// Synced is closed once the labels were first read.
func (d *Daemon) Synced() <-chan struct{} { return d.synced }

// nodeName is the Swarm node's name when the sidecar is a stack's task, "" otherwise.
func (d *Daemon) nodeName() string {
	if !d.inStack {
		return ""
	}
	return d.node.Name
}

func (d *Daemon) scope() string {
	if d.cfg.AllProjects {
		return "all projects"
	}
	return "project " + d.cfg.Project
}

func (d *Daemon) targetDescriptions() []string {
	var out []string
	for _, n := range d.cfg.TargetNames() {
		out = append(out, n+"="+d.targets[n].String())
	}
	return out
}

// Status describes the jobs, targets, restores, what could not be configured and what
// recovery has left to do.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	rs := d.rec.State()
	st := &control.Status{Version: version.Version, Host: d.host, Node: d.nodeName(), Project: d.cfg.Project, AllProjects: d.cfg.AllProjects,
		Started: d.started, SigningKey: d.signer.ID(), PublicKey: d.signer.Public().String(), Problems: rs.Problems, Unscheduled: rs.Unscheduled, Elsewhere: rs.Elsewhere,
		EventsConnected: rs.EventsConnected, LastReconcile: rs.LastSync}
	if err := d.runner.Status(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// repoKeys are the key files of encrypted snapshot repositories: the one given, and those of
// repositories made here, in the state directory.
func (d *Daemon) repoKeys() snapshots.Keys {
	return snapshots.Keys{File: d.cfg.RepositoryKeyFile, Dir: d.cfg.StateDir}
}

// Backups lists the targets' backups (one target, or all), of a project and service.
func (d *Daemon) Backups(ctx context.Context, name, project, service string) ([]control.Backups, error) {
	names := d.cfg.TargetNames()
	if name != "" {
		if _, ok := d.targets[name]; !ok {
			return nil, &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf("no target %q on the sidecar (targets: %s)", name, strings.Join(names, ", "))}
		}
		names = []string{name}
	}
	prefix := ""
	switch {
	case project != "" && service != "":
		prefix = artifact.Dir(project, service) + "/"
	case project != "":
		prefix = artifact.ProjectDir(project)
	}
	var out []control.Backups
	for _, n := range names {
		found, err := listing.List(ctx, d.targets[n], prefix, d.keys)
		if err != nil {
			return nil, fmt.Errorf("listing target %s: %w", n, err)
		}
		snaps, problems, err := snapshots.List(ctx, d.targets[n], d.repoKeys(), repo.Access{Trust: d.keys})
		if err != nil {
			return nil, fmt.Errorf("listing the snapshots on target %s: %w", n, err)
		}
		b := control.Backups{Target: n, URL: d.targets[n].String(), Backups: []control.Backup{}, Problems: append(found.Problems, problems...)}
		f := selection.Filter{Project: project, Service: service}
		for _, s := range append(found.Backups, snaps...) {
			if v, _ := f.Match(s); v != selection.Other {
				b.Backups = append(b.Backups, wire.FromSummary(s))
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// RunBackup runs what `docker backup run` asks for (see jobs.Runner.Run).
func (d *Daemon) RunBackup(req control.RunRequest, log slog.Handler) (*control.Result, error) {
	if req.Project == "" {
		req.Project = d.cfg.Project
	}
	return d.runner.Run(req, log)
}

// Restore restores what `docker backup restore` asks for (see jobs.Runner.Restore).
func (d *Daemon) Restore(req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	if req.Project == "" {
		req.Project = d.cfg.Project
	}
	return d.runner.Restore(req, log)
}

// Verify verifies what `docker backup verify` asks for (see jobs.Runner.Verify).
func (d *Daemon) Verify(req control.VerifyRequest, log *slog.Logger) (*control.Result, error) {
	if req.Project == "" {
		req.Project = d.cfg.Project
	}
	return d.runner.Verify(req, log)
}

// BackupCatalog backs the catalog up now.
func (d *Daemon) BackupCatalog(ctx context.Context) error { return d.runner.BackupCatalog(ctx) }

// Rebuild adds the targets' backups to the catalog.
func (d *Daemon) Rebuild(ctx context.Context) (int, error) { return d.runner.Rebuild(ctx) }
