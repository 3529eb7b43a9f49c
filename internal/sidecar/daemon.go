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
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/scheduler"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/moby/moby/client"
)

// API is the part of the Engine API the sidecar uses.
type API interface {
	containers.API
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// Daemon is a running sidecar.
type Daemon struct {
	api     API
	cfg     Config
	log     *slog.Logger
	cat     *catalog.Catalog
	sched   *scheduler.Scheduler
	targets map[string]target.Target
	host    string
	self    string // the sidecar's own container ID, when known
	started time.Time
	obs     Observer

	// root ends when the sidecar shuts down; runs asked for by the plugin derive from it, and
	// manual counts them so that shutdown waits for their containers to be started again.
	root   context.Context
	manual sync.WaitGroup
	// synced is closed once the first reconcile is done: the control API waits for it, so a
	// request never sees a sidecar that has not read the labels yet.
	synced chan struct{}

	reconcileMu sync.Mutex // one reconcile at a time
	mu          sync.Mutex // guards the fields below
	jobs        map[string]*job
	problems    []string
	unscheduled []string // enabled services without a schedule
	lastSync    time.Time
	events      atomic.Bool
}

// Options are what New needs besides the configuration.
type Options struct {
	API      API
	Log      *slog.Logger
	Observer Observer // nil: none
}

// New connects the pieces: it identifies the sidecar's container and project, opens the
// targets and the catalog, and recovers what a crash left behind. Run starts the work.
func New(ctx context.Context, cfg Config, opts Options) (*Daemon, error) {
	d := &Daemon{api: opts.API, cfg: cfg, log: opts.Log, jobs: map[string]*job{}, started: time.Now(), obs: opts.Observer, root: ctx, synced: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.obs == nil {
		d.obs = nopObserver{}
	}
	info, err := d.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the Docker engine for its name: %w", err)
	}
	d.host = info.Info.Name
	if self, err := d.findSelf(ctx); err != nil {
		d.log.Warn("cannot find the sidecar's own container", "error", err)
	} else {
		d.self = self.ID
		if d.cfg.Project == "" && !d.cfg.AllProjects {
			d.cfg.Project = self.Project
		}
		if err := d.cfg.AddLabelTargets(self.Labels); err != nil {
			return nil, err
		}
	}
	if d.cfg.Project == "" && !d.cfg.AllProjects {
		return nil, fmt.Errorf("cannot tell which compose project to manage: the sidecar is not in one; set %s=NAME, or %s=all for every project", EnvProject, EnvScope)
	}
	if err := d.openTargets(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w", cfg.StateDir, err)
	}
	dbPath := filepath.Join(cfg.StateDir, "catalog.db")
	_, statErr := os.Stat(dbPath)
	fresh := errors.Is(statErr, os.ErrNotExist)
	if d.cat, err = catalog.Open(ctx, dbPath); err != nil {
		return nil, err
	}
	d.sched = scheduler.New(scheduler.Options{MaxConcurrent: cfg.MaxConcurrent, Timeout: cfg.Timeout, Jitter: cfg.Jitter,
		Location: cfg.Location, Log: d.log})
	if err := d.recover(ctx); err != nil {
		d.cat.Close()
		return nil, err
	}
	if fresh {
		// A new catalog next to existing backups (a new host, a lost volume): learn them.
		if n, err := d.Rebuild(ctx); err != nil {
			d.log.Warn("rebuilding the catalog from the targets failed", "error", err)
		} else if n > 0 {
			d.log.Info("catalog rebuilt from the targets' manifests", "backups", n)
		}
	}
	return d, nil
}

func (d *Daemon) openTargets() error {
	d.targets = map[string]target.Target{}
	for _, name := range d.cfg.TargetNames() {
		url := d.cfg.Targets[name]
		t, err := target.OpenWith(url, d.cfg.CredentialsEnv(name))
		if err != nil {
			return fmt.Errorf("target %s (%s): %w", name, url, err)
		}
		prefix := ""
		if d.cfg.Prefix != nil {
			prefix = *d.cfg.Prefix
		} else if strings.HasPrefix(url, "s3://") {
			prefix = hostPrefix(d.host)
		}
		if t, err = target.Sub(t, prefix); err != nil {
			return fmt.Errorf("target %s: %w", name, err)
		}
		d.targets[name] = t
	}
	return nil
}

var notKeyChar = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// hostPrefix makes a key prefix of a host name.
func hostPrefix(host string) string {
	p := strings.Trim(notKeyChar.ReplaceAllString(host, "-"), ".-")
	if p == "" {
		return "docker-host"
	}
	return p
}

// findSelf finds the sidecar's container: by host name (Docker's default is the short
// container ID), else by the container ID in the mount table.
func (d *Daemon) findSelf(ctx context.Context) (*containers.Container, error) {
	var candidates []string
	if h, err := os.Hostname(); err == nil {
		candidates = append(candidates, h)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if m := regexp.MustCompile(`/containers/([0-9a-f]{64})/`).FindSubmatch(b); m != nil {
			candidates = append(candidates, string(m[1]))
		}
	}
	for _, id := range candidates {
		c, err := containers.Inspect(ctx, d.api, id)
		if err == nil && c.Labels["docker-backup.sidecar"] == "true" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no container with the docker-backup.sidecar label matches this process (tried %s)", strings.Join(candidates, ", "))
}

// Run schedules the jobs and keeps them in step with the labels until ctx ends, then waits
// for running jobs to stop (their containers are started again).
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Reconcile(ctx); err != nil {
		d.log.Error("first reconcile failed; retrying on events and every resync", "error", err)
	}
	close(d.synced)
	if d.cfg.CatalogBackup != "" {
		if err := d.sched.Set(catalogJobName, d.cfg.CatalogBackup, d.BackupCatalog); err != nil {
			return err
		}
	}
	for _, name := range d.cfg.TargetNames() {
		d.updateUsage(ctx, name)
	}
	d.sched.Start()
	d.log.Info("sidecar running", "scope", d.scope(), "targets", d.targetDescriptions(), "jobs", len(d.jobs))
	d.watch(ctx)
	stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := d.sched.Stop(stopCtx)
	done := make(chan struct{})
	go func() { d.manual.Wait(); close(done) }()
	select {
	case <-done:
	case <-stopCtx.Done():
		err = errors.Join(err, fmt.Errorf("runs asked for by the plugin still running after stop"))
	}
	return err
}

// manualContext is the context of a run or restore asked for by the plugin: it outlives the
// plugin's connection, ends with the sidecar or after the run timeout. Call done after.
func (d *Daemon) manualContext() (ctx context.Context, done func()) {
	d.manual.Add(1)
	ctx, cancel := context.WithCancel(d.root)
	if d.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeout(d.root, d.cfg.Timeout)
	}
	return ctx, func() { cancel(); d.manual.Done() }
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
