package enginetest_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// The fake answers as the Engine does where the project's code looks: inspect by name, ID
// or prefix, listing by labels, commands with their output, input and exit code, files.
func TestEngineAnswersLikeTheEngine(t *testing.T) {
	ctx := context.Background()
	e := enginetest.New(
		enginetest.Service("shop", "db", enginetest.WithEnv("PGUSER=app"), enginetest.WithVolume("pgdata", "/data"),
			enginetest.WithFile("/data/a.txt", "hello"), enginetest.WithLink("/data/l", "a.txt"), enginetest.WithDir("/data/empty")),
		enginetest.Service("shop", "web", enginetest.Stopped()),
	)
	e.OnExec = func(x enginetest.Exec) enginetest.ExecResult {
		if x.Cmd[0] == "fail" {
			return enginetest.ExecResult{Stderr: "boom\n", ExitCode: 3}
		}
		return enginetest.ExecResult{Stdout: strings.Join(x.Cmd, " ") + ":" + string(x.Stdin)}
	}

	db, err := containers.Inspect(ctx, e, "shop-db-1")
	if err != nil {
		t.Fatal(err)
	}
	if db.Project != "shop" || db.Service != "db" || !db.Running || db.Image != "example/db" || len(db.Mounts) != 1 {
		t.Errorf("inspected %+v", db)
	}
	if byPrefix, err := containers.Inspect(ctx, e, db.ID[:12]); err != nil || byPrefix.Name != "shop-db-1" {
		t.Errorf("by ID prefix: %v, %v", byPrefix, err)
	}
	if _, err := containers.Inspect(ctx, e, "nope"); !errors.Is(err, containers.ErrNotFound) {
		t.Errorf("missing container: %v", err)
	}

	running, _ := e.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", containers.LabelProject+"=shop")})
	all, _ := e.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", containers.LabelService)})
	if len(running.Items) != 1 || len(all.Items) != 2 {
		t.Errorf("listed %d running, %d in all", len(running.Items), len(all.Items))
	}

	out, err := db.Output(ctx, "echo", "hi")
	if err != nil || out != "echo hi:" {
		t.Errorf("output %q, %v", out, err)
	}
	var got strings.Builder
	if err := db.Exec(ctx, containers.ExecSpec{Cmd: []string{"cat"}, Stdin: strings.NewReader("input"), Stdout: &got}); err != nil || got.String() != "cat:input" {
		t.Errorf("stdin: %q, %v", got.String(), err)
	}
	var exit *containers.ExitError
	if err := db.Exec(ctx, containers.ExecSpec{Cmd: []string{"fail"}}); !errors.As(err, &exit) || exit.Code != 3 || exit.Stderr != "boom" {
		t.Errorf("failing command: %v", err)
	}
	if n := len(e.Execs()); n != 3 {
		t.Errorf("%d execs recorded", n)
	}

	for p, want := range map[string]containers.PathKind{"/data": containers.Directory, "/data/a.txt": containers.Other,
		"/data/l": containers.Symlink, "/data/empty": containers.Directory, "/": containers.Directory, "/nope": containers.Missing} {
		if k, err := db.Stat(ctx, p); err != nil || k != want {
			t.Errorf("Stat(%s) = %v, %v; want %v", p, k, err, want)
		}
	}
	for src, want := range map[string][]string{
		"/data":       {"data/", "data/a.txt", "data/empty/", "data/l"},
		"/data/.":     {"./", "./a.txt", "./empty/", "./l"},
		"/data/a.txt": {"a.txt"},
	} {
		rc, err := db.CopyFrom(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("CopyFrom(%s) = %v, want %v", src, names, want)
		}
	}

	err = db.WhileStopped(ctx, slog.New(slog.DiscardHandler), func(ctx context.Context) error {
		if c, _ := e.Get("shop-db-1"); c.Running {
			t.Error("still running while stopped")
		}
		return nil
	})
	if c, _ := e.Get("shop-db-1"); err != nil || !c.Running {
		t.Errorf("not started again: %v", err)
	}
	if calls := e.Calls("ContainerStop", "ContainerStart"); len(calls) != 2 || calls[0].Method != "ContainerStop" {
		t.Errorf("calls %v", calls)
	}

	web, _ := containers.Inspect(ctx, e, "shop-web-1")
	if _, err := web.Output(ctx, "true"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("exec in a stopped container: %v", err)
	}
}

func TestEngineFailsWhereTold(t *testing.T) {
	e := enginetest.New(enginetest.Service("shop", "db"))
	e.OnCall = func(c enginetest.Call) error {
		if c.Method == "ContainerStart" {
			return errors.New("port is already allocated")
		}
		return nil
	}
	if _, err := e.ContainerStart(context.Background(), "shop-db-1", client.ContainerStartOptions{}); err == nil {
		t.Error("the start did not fail")
	}
}

func TestEventsReachTheirSubscribers(t *testing.T) {
	e := enginetest.New()
	ctx, cancel := context.WithCancel(context.Background())
	res := e.Events(ctx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container").Add("event", "start")})
	e.Emit(events.Message{Type: "container", Action: "stop"}, events.Message{Type: "container", Action: "start", Actor: events.Actor{ID: "x"}})
	if m := <-res.Messages; m.Actor.ID != "x" {
		t.Errorf("got %+v", m)
	}
	cancel()
	if err := <-res.Err; !errors.Is(err, context.Canceled) {
		t.Errorf("end of the stream: %v", err)
	}
}
