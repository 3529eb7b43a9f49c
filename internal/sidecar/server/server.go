// Package server answers the plugin on the sidecar's control socket (status, listings, runs
// and restores, streamed as one JSON event per line) and serves /healthz, /readyz and the
// metrics on the sidecar's public address.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/outcome"
)

// Service is what the control API exposes.
type Service interface {
	Status(ctx context.Context) (*control.Status, error)
	Backups(ctx context.Context, target, project, service string) ([]control.Backups, error)
	// RunBackup and Restore run in the sidecar's own context: they outlive the request.
	RunBackup(req control.RunRequest, log slog.Handler) (*control.Result, error)
	Restore(req control.RestoreRequest, log *slog.Logger) (*control.Result, error)
	Verify(req control.VerifyRequest, log *slog.Logger) (*control.Result, error)
	BackupCatalog(ctx context.Context) error
	Rebuild(ctx context.Context) (int, error)
	// Synced is closed once the labels were read: requests wait for it.
	Synced() <-chan struct{}
}

// ServeControl answers the plugin on the Unix socket sock (mode 0600: reachable only from
// inside the sidecar's container, by docker exec) until ctx ends.
func ServeControl(ctx context.Context, sock string, svc Service, log *slog.Logger) error {
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return err
	}
	// On shutdown, runs in progress are cancelled; their containers are started again before
	// their answers end, so give them time.
	return serve(ctx, &http.Server{Handler: ControlHandler(svc, log), ReadHeaderTimeout: 5 * time.Second}, l, 2*time.Minute)
}

// ControlHandler is the control API (the paths of package control): status and listings as
// JSON, runs, restores and verifies streamed as one event per line, a failure with its code.
// Every request waits until the labels were read (Service.Synced).
func ControlHandler(svc Service, log *slog.Logger) http.Handler {
	h := &handlers{svc: svc, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+control.PathStatus, h.status)
	mux.HandleFunc("GET "+control.PathBackups, h.backups)
	mux.HandleFunc("POST "+control.PathRun, h.run)
	mux.HandleFunc("POST "+control.PathRestore, h.restore)
	mux.HandleFunc("POST "+control.PathVerify, h.verify)
	mux.HandleFunc("POST "+control.PathCatalog, func(w http.ResponseWriter, r *http.Request) {
		if err := svc.BackupCatalog(r.Context()); err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST "+control.PathRebuild, func(w http.ResponseWriter, r *http.Request) {
		n, err := svc.Rebuild(r.Context())
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, map[string]int{"added": n})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-svc.Synced():
			mux.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// ServePublic serves /healthz, /readyz (ready reports what is not) and the extra handlers
// (metrics) on addr.
func ServePublic(ctx context.Context, addr string, ready func(context.Context) error, extra map[string]http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return serve(ctx, &http.Server{Handler: PublicHandler(ready, extra), ReadHeaderTimeout: 5 * time.Second}, l, 5*time.Second)
}

// PublicHandler serves /healthz (the process answers), /readyz (ready reports what is not,
// within five seconds) and the extra handlers (metrics).
func PublicHandler(ready func(context.Context) error, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	for p, h := range extra {
		mux.Handle(p, h)
	}
	return mux
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

type handlers struct {
	svc Service
	log *slog.Logger
}

func (h *handlers) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.Status(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, st)
}

func (h *handlers) backups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out, err := h.svc.Backups(r.Context(), q.Get("target"), q.Get("project"), q.Get("service"))
	if err != nil {
		httpError(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, out)
}

func (h *handlers) run(w http.ResponseWriter, r *http.Request) {
	var req control.RunRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, &control.Error{Code: control.CodeInvalid, Message: fmt.Sprintf("reading the request: %v", err)})
		return
	}
	stream(w, func(ev slog.Handler) (*control.Result, error) { return h.svc.RunBackup(req, ev) })
}

func (h *handlers) restore(w http.ResponseWriter, r *http.Request) {
	var req control.RestoreRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, &control.Error{Code: control.CodeInvalid, Message: fmt.Sprintf("reading the request: %v", err)})
		return
	}
	stream(w, func(ev slog.Handler) (*control.Result, error) {
		return h.svc.Restore(req, slog.New(slog.NewMultiHandler(h.log.Handler(), ev)))
	})
}

func (h *handlers) verify(w http.ResponseWriter, r *http.Request) {
	var req control.VerifyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, &control.Error{Code: control.CodeInvalid, Message: fmt.Sprintf("reading the request: %v", err)})
		return
	}
	stream(w, func(ev slog.Handler) (*control.Result, error) {
		return h.svc.Verify(req, slog.New(slog.NewMultiHandler(h.log.Handler(), ev)))
	})
}

// stream answers with one JSON Event per line: the operation's log as it happens, then its
// result or its error with its code.
func stream(w http.ResponseWriter, op func(slog.Handler) (*control.Result, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: w}
	res, err := op(&eventHandler{ew: ew})
	if err != nil {
		ew.write(control.Event{Time: time.Now(), Error: err.Error(), Code: outcome.Code(err), Result: res})
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

func httpError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(control.Event{Error: err.Error(), Code: outcome.Code(err)})
}
