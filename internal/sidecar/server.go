package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/version"
)

// ControlSocket is the path of the control socket.
func (d *Daemon) ControlSocket() string { return filepath.Join(d.cfg.StateDir, control.SocketName) }

// ServeControl answers the plugin on the control socket until ctx ends. The socket is
// reachable only from inside the sidecar's container (docker exec), mode 0600.
func (d *Daemon) ServeControl(ctx context.Context) error {
	sock := d.ControlSocket()
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+control.PathStatus, d.handleStatus)
	mux.HandleFunc("GET "+control.PathBackups, d.handleBackups)
	mux.HandleFunc("POST "+control.PathRun, d.handleRun)
	mux.HandleFunc("POST "+control.PathRestore, d.handleRestore)
	mux.HandleFunc("POST "+control.PathCatalog, func(w http.ResponseWriter, r *http.Request) {
		if err := d.BackupCatalog(r.Context()); err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST "+control.PathRebuild, func(w http.ResponseWriter, r *http.Request) {
		n, err := d.Rebuild(r.Context())
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, map[string]int{"added": n})
	})
	// On shutdown, runs in progress are cancelled; their containers are started again before
	// their answers end, so give them time.
	return serve(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, l, 2*time.Minute)
}

// ServePublic serves /healthz, /readyz and the extra handlers (metrics) on addr.
func (d *Daemon) ServePublic(ctx context.Context, addr string, extra map[string]http.Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := d.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	for p, h := range extra {
		mux.Handle(p, h)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return serve(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, l, 5*time.Second)
}

func serve(ctx context.Context, srv *http.Server, l net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Status describes the jobs and what could not be configured.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	d.mu.Lock()
	jobs := make([]*job, 0, len(d.jobs))
	for _, k := range sortedKeys(d.jobs) {
		jobs = append(jobs, d.jobs[k])
	}
	st := &control.Status{Version: version.Version, Host: d.host, Scope: d.scope(), Started: d.started,
		Problems: append([]string(nil), d.problems...), Unscheduled: append([]string(nil), d.unscheduled...), EventsConnected: d.events.Load(), LastReconcile: d.lastSync}
	d.mu.Unlock()
	for _, n := range d.cfg.TargetNames() {
		st.Targets = append(st.Targets, control.TargetInfo{Name: n, URL: d.targets[n].String()})
	}
	restores, err := d.cat.Restores(ctx, 5)
	if err != nil {
		return nil, err
	}
	for _, r := range restores {
		st.Restores = append(st.Restores, control.RestoreInfo{Project: r.Project, Service: r.Service, Key: r.ArtifactKey, Target: r.Target,
			Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error})
	}
	for _, j := range jobs {
		js := control.JobStatus{Project: j.Project, Service: j.Service, Job: j.Name, Container: j.Container, Strategy: j.Strategy,
			Schedule: j.Schedule, Target: j.target(), Stop: j.Stop, Pre: j.Pre, Post: j.Post, Next: d.sched.Next(j.Key()), Running: len(j.running) > 0}
		if j.Retention != (retention.Policy{}) {
			js.Retention = j.Retention.String()
		}
		if s, err := schedule.Parse(j.Schedule); err == nil {
			js.ScheduleText = s.Describe()
		}
		runs, err := d.cat.Runs(ctx, j.ID, 50)
		if err != nil {
			return nil, err
		}
		for i, r := range runs {
			info := runInfo(r)
			if i == 0 {
				js.Last = info
			}
			if r.Status == catalog.Success {
				js.LastSuccess = info
				break
			}
		}
		if js.Runs, err = d.cat.Counts(ctx, j.ID); err != nil {
			return nil, err
		}
		st.Jobs = append(st.Jobs, js)
	}
	return st, nil
}

func runInfo(r catalog.Run) *control.RunInfo {
	return &control.RunInfo{ID: r.ID, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Size: r.Size, Key: r.ArtifactKey, Error: r.Error}
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := d.Status(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, st)
}

func (d *Daemon) handleBackups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	names := d.cfg.TargetNames()
	if t := q.Get("target"); t != "" {
		if _, ok := d.targets[t]; !ok {
			httpError(w, http.StatusBadRequest, fmt.Errorf("no target %q on the sidecar (targets: %s)", t, strings.Join(names, ", ")))
			return
		}
		names = []string{t}
	}
	project, service := q.Get("project"), q.Get("service")
	prefix := ""
	if project != "" && service != "" {
		prefix = artifact.Dir(project, service) + "/"
	}
	var out []control.Backups
	for _, n := range names {
		listing, err := engine.List(r.Context(), d.targets[n], prefix)
		if err != nil {
			httpError(w, http.StatusBadGateway, fmt.Errorf("listing target %s: %w", n, err))
			return
		}
		b := control.Backups{Target: n, URL: d.targets[n].String(), Backups: []*artifact.Manifest{}, Problems: listing.Problems}
		for _, m := range listing.Backups {
			if (project == "" || m.Project == project) && (service == "" || m.Service == service) {
				b.Backups = append(b.Backups, m)
			}
		}
		out = append(out, b)
	}
	writeJSON(w, out)
}

func (d *Daemon) handleRun(w http.ResponseWriter, r *http.Request) {
	var req control.RunRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err))
		return
	}
	if req.Project == "" {
		req.Project = d.cfg.Project
	}
	j, err := d.jobFor(r.Context(), req)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	ctx, done := d.manualContext()
	defer done()
	stream(w, func(h slog.Handler) (*control.Result, error) {
		return d.run(ctx, j, h)
	})
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

func (d *Daemon) handleRestore(w http.ResponseWriter, r *http.Request) {
	var req control.RestoreRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err))
		return
	}
	if req.Project == "" {
		req.Project = d.cfg.Project
	}
	ctx, done := d.manualContext()
	defer done()
	stream(w, func(h slog.Handler) (*control.Result, error) {
		return d.Restore(ctx, req, slog.New(slog.NewMultiHandler(d.log.Handler(), h)))
	})
}

// Restore verifies and restores a backup into a service; the service's jobs do not run
// meanwhile.
func (d *Daemon) Restore(ctx context.Context, req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	name := req.Target
	if name == "" {
		name = "default"
	}
	tgt, ok := d.targets[name]
	if !ok {
		return nil, fmt.Errorf("no target %q on the sidecar (targets: %s)", name, strings.Join(d.cfg.TargetNames(), ", "))
	}
	c, err := containers.Find(ctx, d.api, req.Project, req.Service)
	if err != nil {
		return nil, err
	}
	var m *artifact.Manifest
	if req.Key == "latest" {
		listing, err := engine.List(ctx, tgt, artifact.Dir(c.Project, c.Service)+"/")
		if err != nil {
			return nil, err
		}
		if len(listing.Backups) == 0 {
			return nil, fmt.Errorf("no backup of %s on target %s", c, name)
		}
		m = listing.Backups[0]
	} else if m, err = engine.ReadManifest(ctx, tgt, strings.TrimSuffix(req.Key, artifact.ManifestSuffix)); err != nil {
		return nil, err
	}
	if !detect.Supports(ctx, c, m.Strategy) {
		return nil, fmt.Errorf("refusing to restore: %s is a %s backup, but %s (image %s) does not look like a %s server", m.Artifact, m.Strategy, c, c.Image, m.Strategy)
	}
	strat, err := strategy.New(m.Strategy, strategy.Options{Log: log})
	if err != nil {
		return nil, err
	}
	unlock, err := d.lockService(c.Project, c.Service)
	if err != nil {
		return nil, err
	}
	defer unlock()
	started := time.Now()
	// Recorded before anything is stopped: a crash mid-restore starts the container again.
	id, err := d.cat.StartRestore(ctx, catalog.Restore{Project: c.Project, Service: c.Service, ArtifactKey: m.Artifact,
		Target: name, Container: c.ID, StartedAt: started})
	if err != nil {
		return nil, err
	}
	log.Info("restoring", "key", m.Artifact, "into", c.String())
	err = engine.Restore(ctx, engine.RestoreRequest{Target: tgt, Manifest: m, Container: c, Strategy: strat,
		StopContainer: m.Strategy == "volume" && !req.NoStop, Log: log})
	finish := catalog.Restore{ID: id, Status: catalog.Success, FinishedAt: time.Now()}
	if err != nil {
		finish.Status, finish.Error = catalog.Failed, err.Error()
	}
	if ferr := d.cat.FinishRestore(context.WithoutCancel(ctx), finish); ferr != nil {
		log.Error("recording the restore failed", "error", ferr)
	}
	if err != nil {
		return nil, err
	}
	return &control.Result{Key: m.Artifact, Target: name, Duration: time.Since(started), Manifest: m}, nil
}

// lockService holds every job of a service, so that no backup runs during a restore.
func (d *Daemon) lockService(project, service string) (func(), error) {
	d.mu.Lock()
	var held []*job
	var busy string
	for _, j := range d.jobs {
		if j.Project != project || j.Service != service {
			continue
		}
		select {
		case j.running <- struct{}{}:
			held = append(held, j)
		default:
			busy = j.Key()
		}
	}
	d.mu.Unlock()
	unlock := func() {
		for _, j := range held {
			<-j.running
		}
	}
	if busy != "" {
		unlock()
		return nil, fmt.Errorf("job %s is running a backup of the service now: restore when it is done", busy)
	}
	return unlock, nil
}

// stream answers with one JSON Event per line: the operation's log as it happens, then its
// result or its error.
func stream(w http.ResponseWriter, op func(slog.Handler) (*control.Result, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: w}
	res, err := op(&eventHandler{ew: ew})
	if err != nil {
		ew.write(control.Event{Time: time.Now(), Error: err.Error(), Result: res})
		return
	}
	ew.write(control.Event{Time: time.Now(), Result: res})
}

type eventWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (e *eventWriter) write(ev control.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := json.Marshal(ev)
	_, _ = e.w.Write(append(b, '\n'))
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
}

// eventHandler is a slog.Handler that streams records as Events.
type eventHandler struct {
	ew    *eventWriter
	attrs []slog.Attr
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var parts []string
	add := func(a slog.Attr) bool {
		if a.Key != "job" {
			parts = append(parts, a.Key+"="+a.Value.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	msg := r.Message
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	h.ew.write(control.Event{Time: r.Time, Level: strings.ToLower(r.Level.String()), Message: msg})
	return nil
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{ew: h.ew, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *eventHandler) WithGroup(string) slog.Handler { return h }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(control.Event{Error: err.Error()})
}
