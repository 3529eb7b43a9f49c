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
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/engine"
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
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-d.synced:
			mux.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
	// On shutdown, runs in progress are cancelled; their containers are started again before
	// their answers end, so give them time.
	return serve(ctx, &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}, l, 2*time.Minute)
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
