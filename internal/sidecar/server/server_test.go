package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/metrics"
	"github.com/docker-backup/docker-backup/internal/plan"
)

// fakeService is the daemon as the control API sees it: it answers what it is told to and
// records what it was asked.
type fakeService struct {
	mu     sync.Mutex
	asked  []string
	synced chan struct{}
	err    error // every operation's, when set
}

func newFakeService() *fakeService {
	s := &fakeService{synced: make(chan struct{})}
	close(s.synced)
	return s
}

func (s *fakeService) ask(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, fmt.Sprintf(format, args...))
}

func (s *fakeService) Asked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.asked, "; ")
}

func (s *fakeService) Status(context.Context) (*control.Status, error) {
	s.ask("status")
	if s.err != nil {
		return nil, s.err
	}
	return &control.Status{Version: "v1", Project: "shop"}, nil
}

func (s *fakeService) Backups(_ context.Context, target, project, service string) ([]control.Backups, error) {
	s.ask("backups %s %s %s", target, project, service)
	if target == "nope" {
		return nil, &control.Error{Code: control.CodeNotFound, Message: `no target "nope" on the sidecar (targets: default)`}
	}
	if s.err != nil {
		return nil, s.err
	}
	return []control.Backups{{Target: "default", Backups: []control.Backup{{Key: "shop/db/k"}}}}, nil
}

// RunBackup logs as a run does, then ends as told.
func (s *fakeService) RunBackup(req control.RunRequest, h slog.Handler) (*control.Result, error) {
	s.ask("run %s/%s/%s", req.Project, req.Service, req.Job)
	log := slog.New(h).With("job", "nightly")
	log.Debug("not for the plugin")
	log.Info("stopping container", "container", "shop-db-1")
	log.Warn("the server is older")
	if s.err != nil {
		return nil, s.err
	}
	return &control.Result{Key: "shop/db/k", Target: "default"}, nil
}

func (s *fakeService) Restore(req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	s.ask("restore %s/%s %s %s no-stop=%v unsigned=%v", req.Project, req.Service, req.Key, req.Target, req.NoStop, req.AllowUnsigned)
	log.Info("restoring", "key", req.Key)
	if s.err != nil {
		return nil, s.err
	}
	return &control.Result{Key: req.Key, Target: "default"}, nil
}

func (s *fakeService) Verify(req control.VerifyRequest, log *slog.Logger) (*control.Result, error) {
	s.ask("verify %s/%s %s", req.Project, req.Service, req.Key)
	if s.err != nil {
		return nil, s.err
	}
	return &control.Result{Key: req.Key, Verify: &control.VerifyReport{Backup: req.Key, Passed: true}}, nil
}

func (s *fakeService) BackupCatalog(context.Context) error {
	s.ask("catalog")
	return s.err
}

func (s *fakeService) Rebuild(context.Context) (int, error) {
	s.ask("rebuild")
	return 3, s.err
}

func (s *fakeService) Synced() <-chan struct{} { return s.synced }

// logLines is a slog.Handler's output, for the server's own log.
type logLines struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// The control API's routes: what each answers (status code, the events of a stream, a
// failure's code) and what it asks the daemon, for good and bad requests.
func TestControlRoutes(t *testing.T) {
	busy := &control.Error{Code: control.CodeBusy, Message: "a backup of shop/db runs"}
	for _, tc := range []struct {
		name, method, path, body string
		err                      error // the daemon's
		status                   int
		asked                    string
		answer                   string // a JSON answer's, or a stream's last event
		code                     string // a failure's code
		events                   []string
	}{
		{name: "status", method: "GET", path: control.PathStatus, status: 200, asked: "status", answer: `"version":"v1"`},
		{name: "status fails", method: "GET", path: control.PathStatus, err: errors.New("catalog: database is locked"), status: 500, asked: "status",
			code: control.CodeFailed, answer: "database is locked"},
		{name: "backups", method: "GET", path: control.PathBackups + "?target=default&project=shop&service=db", status: 200,
			asked: "backups default shop db", answer: `"artifact":"shop/db/k"`},
		{name: "backups of no target", method: "GET", path: control.PathBackups + "?target=nope", status: 502, asked: "backups nope  ",
			code: control.CodeNotFound, answer: `no target \"nope\"`},
		{name: "run", method: "POST", path: control.PathRun, body: `{"project":"shop","service":"db","job":"nightly"}`, status: 200,
			asked: "run shop/db/nightly", answer: `"result":{"key":"shop/db/k"`,
			events: []string{"info Stopping container (container=shop-db-1)", "warn warn: The server is older"}},
		{name: "run refused", method: "POST", path: control.PathRun, body: `{"service":"db"}`, err: fmt.Errorf("no: %w", plan.ErrRefused), status: 200,
			asked: "run /db/", code: control.CodeRefused, answer: `"error":"no: the backup does not fit the service"`, events: []string{"info Stopping container (container=shop-db-1)", "warn warn: The server is older"}},
		{name: "run busy", method: "POST", path: control.PathRun, body: `{"service":"db"}`, err: busy, status: 200, asked: "run /db/", code: control.CodeBusy,
			events: []string{"info Stopping container (container=shop-db-1)", "warn warn: The server is older"}},
		{name: "run of bad JSON", method: "POST", path: control.PathRun, body: `{"service":`, status: 400, code: control.CodeInvalid, answer: "reading the request"},
		{name: "run of a wrong type", method: "POST", path: control.PathRun, body: `{"service":7}`, status: 400, code: control.CodeInvalid},
		{name: "run by GET", method: "GET", path: control.PathRun, status: 405},
		{name: "restore", method: "POST", path: control.PathRestore, body: `{"project":"shop","service":"db","key":"latest","target":"offsite","no_stop":true,"allow_unsigned":true}`,
			status: 200, asked: "restore shop/db latest offsite no-stop=true unsigned=true", answer: `"result":{"key":"latest"`,
			events: []string{"info Restoring (key=latest)"}},
		{name: "restore partly done", method: "POST", path: control.PathRestore, body: `{"service":"db","key":"k"}`,
			err: &plan.RestoreError{Err: errors.New("tar: short write"), Partial: true, State: "some files are new"}, status: 200,
			asked: "restore /db k  no-stop=false unsigned=false", code: control.CodePartial, answer: "some files are new", events: []string{"info Restoring (key=k)"}},
		{name: "restore untrusted", method: "POST", path: control.PathRestore, body: `{"service":"db","key":"k"}`, err: fmt.Errorf("refusing: %w", plan.ErrNotTrusted),
			status: 200, asked: "restore /db k  no-stop=false unsigned=false", code: control.CodeUntrusted, events: []string{"info Restoring (key=k)"}},
		{name: "restore of bad JSON", method: "POST", path: control.PathRestore, body: `[]`, status: 400, code: control.CodeInvalid},
		{name: "verify", method: "POST", path: control.PathVerify, body: `{"project":"shop","service":"db","key":"k"}`, status: 200,
			asked: "verify shop/db k", answer: `"verify":{"backup":"k"`},
		{name: "verify of bad JSON", method: "POST", path: control.PathVerify, body: `nope`, status: 400, code: control.CodeInvalid},
		{name: "catalog backup", method: "POST", path: control.PathCatalog, status: 200, asked: "catalog", answer: `{"status":"ok"}`},
		{name: "catalog backup fails", method: "POST", path: control.PathCatalog, err: errors.New("no target"), status: 500, asked: "catalog", code: control.CodeFailed},
		{name: "catalog rebuild", method: "POST", path: control.PathRebuild, status: 200, asked: "rebuild", answer: `{"added":3}`},
		{name: "no such route", method: "GET", path: "/v1/nope", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newFakeService()
			svc.err = tc.err
			var logged logLines
			h := ControlHandler(svc, slog.New(slog.NewTextHandler(&logged, nil)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := svc.Asked(); got != tc.asked {
				t.Errorf("asked %q, want %q", got, tc.asked)
			}
			body := rec.Body.String()
			last := body
			var events []string
			if ct := rec.Header().Get("Content-Type"); ct == "application/x-ndjson" {
				sc := bufio.NewScanner(strings.NewReader(body))
				for sc.Scan() {
					var ev control.Event
					if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
						t.Fatalf("a line that is no event: %q", sc.Text())
					}
					if ev.Result == nil && ev.Error == "" {
						events = append(events, ev.Level+" "+eventLine(ev))
					}
					last = sc.Text()
				}
			}
			if !strings.Contains(last, tc.answer) {
				t.Errorf("answer %s, want it to hold %s", last, tc.answer)
			}
			if tc.code != "" {
				var ev control.Event
				if err := json.Unmarshal([]byte(last), &ev); err != nil || ev.Code != tc.code || ev.Error == "" {
					t.Errorf("failure %s, want code %s", last, tc.code)
				}
			}
			if strings.Join(events, "\n") != strings.Join(tc.events, "\n") {
				t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(tc.events, "\n"))
			}
		})
	}
}

// eventLine is how the plugin prints an event (output.Event), without importing it.
func eventLine(ev control.Event) string {
	msg := ev.Message
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if ev.Level == "warn" || ev.Level == "error" {
		msg = ev.Level + ": " + msg
	}
	return msg
}

// A restore's and a verify's log goes to the sidecar's own log too, not only to the plugin.
func TestRestoreLogsToTheSidecarsLogToo(t *testing.T) {
	var logged logLines
	h := ControlHandler(newFakeService(), slog.New(slog.NewTextHandler(&logged, nil)))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", control.PathRestore, strings.NewReader(`{"service":"db","key":"k"}`)))
	if !strings.Contains(logged.String(), "msg=restoring key=k") {
		t.Errorf("the sidecar's log: %q", logged.String())
	}
}

// A request waits until the sidecar has read the labels: one given up before never reaches
// the daemon.
func TestRequestsWaitForTheLabels(t *testing.T) {
	svc := &fakeService{synced: make(chan struct{})}
	h := ControlHandler(svc, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", control.PathStatus, nil).WithContext(ctx))
	if svc.Asked() != "" {
		t.Fatalf("asked before the labels were read: %s", svc.Asked())
	}
	close(svc.synced)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", control.PathStatus, nil))
	if rec.Code != 200 || svc.Asked() != "status" {
		t.Errorf("after: %d, asked %q", rec.Code, svc.Asked())
	}
}

// The public endpoints: /healthz says the process answers, /readyz what is not ready,
// /metrics the metrics.
func TestPublicRoutes(t *testing.T) {
	ready := errors.New("docker engine: connection refused")
	m := metrics.New(func(context.Context) (*control.Status, error) {
		return &control.Status{Jobs: []control.JobStatus{{JobID: control.JobID{Project: "shop", Service: "db", Job: "default", Strategy: "postgres", Target: "default"}}}}, nil
	}, func(context.Context) error { return nil })
	for _, tc := range []struct {
		name, method, path string
		notReady           bool
		status             int
		body               string
	}{
		{"healthz", "GET", "/healthz", false, 200, "ok\n"},
		{"healthz when not ready", "GET", "/healthz", true, 200, "ok\n"},
		{"readyz", "GET", "/readyz", false, 200, "ready\n"},
		{"readyz when not ready", "GET", "/readyz", true, 503, "not ready: docker engine: connection refused\n"},
		{"metrics", "GET", "/metrics", false, 200, `docker_backup_job_running{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 0`},
		{"healthz by POST", "POST", "/healthz", false, 405, ""},
		{"elsewhere", "GET", "/v1/status", false, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := PublicHandler(func(context.Context) error {
				if tc.notReady {
					return ready
				}
				return nil
			}, map[string]http.Handler{"GET /metrics": m.Handler()})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("%d %.300q, want %d %q", rec.Code, rec.Body, tc.status, tc.body)
			}
		})
	}
}

// The control socket is the sidecar's own user's alone (0600), answers over HTTP, and ends
// when its context does.
func TestServeControlOnItsSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), control.SocketName)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeControl(ctx, sock, newFakeService(), slog.New(slog.DiscardHandler)) }()
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		for {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
			if err == nil || ctx.Err() != nil {
				return c, err
			}
			runtime.Gosched() // the server is not listening yet
		}
	}}}
	resp, err := hc.Get("http://sidecar" + control.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"project":"shop"`) {
		t.Errorf("%s %s", resp.Status, b)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v", fi.Mode(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeControl ended with %v", err)
	}
}
