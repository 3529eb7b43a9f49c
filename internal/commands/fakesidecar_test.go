package commands

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/sidecar/server"
)

// fakeSidecar is a sidecar's daemon behind its real control API (server.ControlHandler):
// fixed answers, and what it was asked.
type fakeSidecar struct {
	mu      sync.Mutex
	asked   []string
	status  control.Status
	backups []control.Backups
	// result and err end a run, restore or verify; log is what it logs first.
	result *control.Result
	err    error
	log    []string
}

func (s *fakeSidecar) ask(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, what)
}

// Asked is what the sidecar was asked, in order.
func (s *fakeSidecar) Asked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.asked, "; ")
}

func (s *fakeSidecar) Status(context.Context) (*control.Status, error) {
	s.ask("status")
	st := s.status
	return &st, nil
}

func (s *fakeSidecar) Backups(_ context.Context, target, project, service string) ([]control.Backups, error) {
	s.ask("backups target=" + target + " project=" + project + " service=" + service)
	return s.backups, nil
}

func (s *fakeSidecar) end(log *slog.Logger) (*control.Result, error) {
	for _, l := range s.log {
		if w, ok := strings.CutPrefix(l, "warn "); ok {
			log.Warn(w)
		} else {
			log.Info(l, "container", "shop-db-1")
		}
	}
	return s.result, s.err
}

func (s *fakeSidecar) RunBackup(req control.RunRequest, h slog.Handler) (*control.Result, error) {
	s.ask("run " + req.Project + "/" + req.Service + "/" + req.Job)
	return s.end(slog.New(h))
}

func (s *fakeSidecar) Restore(req control.RestoreRequest, log *slog.Logger) (*control.Result, error) {
	s.ask("restore " + req.Project + "/" + req.Service + " " + req.Key + " from " + req.Target)
	return s.end(log)
}

func (s *fakeSidecar) Verify(req control.VerifyRequest, log *slog.Logger) (*control.Result, error) {
	s.ask("verify " + req.Project + "/" + req.Service + " " + req.Key + " on " + req.Target)
	return s.end(log)
}

func (s *fakeSidecar) BackupCatalog(context.Context) error { return errors.New("not in these tests") }
func (s *fakeSidecar) Rebuild(context.Context) (int, error) {
	return 0, errors.New("not in these tests")
}

func (s *fakeSidecar) Synced() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// withSidecar adds project's sidecar container ("PROJECT-backup-1") to the engine: `/sidecar
// ctl METHOD PATH [BODY]` run in it is answered as the sidecar's binary does, through the
// control API (the answer's body on stdout; exit 1 for a status other than 2xx).
func withSidecar(e *enginetest.Engine, project string, s *fakeSidecar) {
	e.Add(enginetest.Service(project, "backup", enginetest.Sidecar(), enginetest.WithImage("docker-backup-sidecar:dev")))
	h := server.ControlHandler(s, slog.New(slog.DiscardHandler))
	e.OnExec = func(x enginetest.Exec) enginetest.ExecResult {
		if x.Container != project+"-backup-1" || len(x.Cmd) < 4 || x.Cmd[0] != "/sidecar" || x.Cmd[1] != "ctl" {
			return enginetest.ExecResult{Stderr: "not found: " + x.Cmd[0], ExitCode: 127}
		}
		var body *strings.Reader
		if len(x.Cmd) > 4 {
			body = strings.NewReader(x.Cmd[4])
		} else {
			body = strings.NewReader("")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(strings.ToUpper(x.Cmd[2]), "http://sidecar"+x.Cmd[3], body))
		res := enginetest.ExecResult{Stdout: rec.Body.String()}
		if rec.Code/100 != 2 {
			res.Stderr, res.ExitCode = "Error: the sidecar answered "+http.StatusText(rec.Code)+"\n", 1
		}
		return res
	}
}

// sidecarStatus is the status the fake sidecars report.
func sidecarStatus() control.Status {
	db := control.JobID{Project: "shop", Service: "db", Job: "default", Strategy: "postgres", Target: "default"}
	ok := &control.RunInfo{ID: 3, Status: control.Success, StartedAt: testNow.Add(-10 * time.Hour), FinishedAt: testNow.Add(-10*time.Hour + 90*time.Second),
		Size: 5 << 20, Key: "shop/db/db-postgres-20261207T020000.000Z-0a1b2c3d.sql.zst"}
	return control.Status{Version: "v1.4.0", Host: "backup-host", Project: "shop", Started: testNow.Add(-72 * time.Hour), SigningKey: "ed25519:1a2b3c4d5e6f7081",
		Targets: []control.TargetInfo{{Name: "default", URL: "/backups", Backups: 4, Bytes: 20 << 20, Listed: testNow.Add(-time.Minute)}},
		Jobs: []control.JobStatus{{JobID: db, Container: "shop-db-1", Schedule: "0 2 * * *", ScheduleText: "daily at 02:00", Interval: 24 * time.Hour,
			Retention: "keep-daily=7", Next: testNow.Add(14 * time.Hour), Last: ok, LastSuccess: ok, LastFinished: ok, Runs: map[control.Outcome]int{control.Success: 4}}},
		Unscheduled: []string{"files"}, EventsConnected: true, LastReconcile: testNow.Add(-time.Minute)}
}
