package containers_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/moby/moby/api/types/container"
)

// recorder is a Guard that records what it is told, and refuses stops when told to.
type recorder struct {
	told   []string
	refuse error
}

func (r *recorder) Stopping(_ context.Context, c *containers.Container) error {
	r.told = append(r.told, "stopping "+c.Name)
	return r.refuse
}

func (r *recorder) Started(_ context.Context, c *containers.Container) {
	r.told = append(r.told, "started "+c.Name)
}

// WhileStopped stops a running container (the guard told first), and starts it again on
// every path: success, failure, panic. A stopped one is left stopped; a guard that cannot
// record the stop cancels it; a start that fails says how to start it by hand.
func TestWhileStopped(t *testing.T) {
	errWork := errors.New("the work failed")
	for _, tc := range []struct {
		name      string
		opts      []enginetest.Option
		fn        func() error
		refuse    error
		startFail bool
		told      string // what the guard was told
		running   bool   // afterwards
		says      string // the error
	}{
		{name: "success", fn: func() error { return nil }, told: "stopping shop-db-1 started shop-db-1", running: true},
		{name: "failure", fn: func() error { return errWork }, told: "stopping shop-db-1 started shop-db-1", running: true, says: "the work failed"},
		{name: "panic", fn: func() error { panic("boom") }, told: "stopping shop-db-1 started shop-db-1", running: true, says: "panic"},
		{name: "already stopped", opts: []enginetest.Option{enginetest.Stopped()}, fn: func() error { return nil }, told: "", running: false},
		{name: "the guard refuses", fn: func() error { return nil }, refuse: errors.New("catalog is read-only"), told: "stopping shop-db-1", running: true,
			says: "recording that shop/db (container shop-db-1) is stopped: catalog is read-only"},
		{name: "the start fails", fn: func() error { return nil }, startFail: true, told: "stopping shop-db-1", running: false,
			says: "starting shop/db (container shop-db-1) again failed, start it by hand (docker start shop-db-1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := enginetest.New(enginetest.Service("shop", "db", tc.opts...))
			if tc.startFail {
				e.OnCall = func(c enginetest.Call) error {
					if c.Method == "ContainerStart" {
						return errors.New("port is already allocated")
					}
					return nil
				}
			}
			c := inspect(t, e, "shop-db-1")
			g := &recorder{refuse: tc.refuse}
			c.SetGuard(g)
			ran := false
			err := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = errors.New("panic")
					}
				}()
				return c.WhileStopped(context.Background(), slog.New(slog.DiscardHandler), func(context.Context) error {
					ran = true
					if s, _ := e.Get("shop-db-1"); s.Running {
						t.Error("running during the work")
					}
					return tc.fn()
				})
			}()
			if got := strings.Join(g.told, " "); got != tc.told {
				t.Errorf("guard told %q, want %q", got, tc.told)
			}
			if s, _ := e.Get("shop-db-1"); s.Running != tc.running {
				t.Errorf("running %v, want %v", s.Running, tc.running)
			}
			if tc.says == "" && err != nil || tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("error %v, want one saying %q", err, tc.says)
			}
			if ran == (tc.refuse != nil) {
				t.Errorf("the work ran: %v", ran)
			}
		})
	}
}

// HolderOf is the deepest mount holding a path; MountsBelow, the other mounts inside it.
func TestMounts(t *testing.T) {
	mounts := []container.MountPoint{{Destination: "/data"}, {Destination: "/data/cache/"}, {Destination: "/srv"}, {Destination: "/database"}}
	for p, want := range map[string]string{"/data": "/data", "/data/x": "/data", "/data/cache/y": "/data/cache/", "/database/z": "/database", "/etc": "", "/": ""} {
		h := containers.HolderOf(mounts, p)
		if got := ""; h != nil {
			got = h.Destination
			if got != want {
				t.Errorf("HolderOf(%s) = %s, want %s", p, got, want)
			}
		} else if want != "" {
			t.Errorf("HolderOf(%s) = nil, want %s", p, want)
		}
	}
	below := containers.MountsBelow(mounts, "/data", &mounts[0])
	if len(below) != 1 || below[0].Destination != "/data/cache/" {
		t.Errorf("MountsBelow(/data) = %v", below)
	}
}
