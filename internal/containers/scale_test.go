package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/swarm/scale"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeSwarm is a manager with one service whose tasks follow its replica count at once.
type fakeSwarm struct {
	API      // not used by the code under test
	replicas *uint64
	version  uint64
	conflict int // updates refused as out of sequence before one succeeds
	updates  []uint64
}

func (f *fakeSwarm) ServiceInspect(_ context.Context, id string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	s := swarm.Service{ID: id, Meta: swarm.Meta{Version: swarm.Version{Index: f.version}}}
	s.Spec.Name = "st_files"
	if f.replicas != nil {
		n := *f.replicas
		s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	} else {
		s.Spec.Mode.Global = &swarm.GlobalService{}
	}
	return client.ServiceInspectResult{Service: s}, nil
}

func (f *fakeSwarm) ServiceUpdate(_ context.Context, _ string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	if o.Version.Index != f.version {
		return client.ServiceUpdateResult{}, fmt.Errorf("update out of sequence")
	}
	if f.conflict > 0 {
		f.conflict--
		f.version++
		return client.ServiceUpdateResult{}, fmt.Errorf("update out of sequence")
	}
	n := *o.Spec.Mode.Replicated.Replicas
	f.replicas, f.version = &n, f.version+1
	f.updates = append(f.updates, n)
	return client.ServiceUpdateResult{}, nil
}

func (f *fakeSwarm) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	var out client.TaskListResult
	if f.replicas == nil {
		return out, nil
	}
	for range *f.replicas {
		out.Items = append(out.Items, swarm.Task{Status: swarm.TaskStatus{State: swarm.TaskStateRunning}, DesiredState: swarm.TaskStateRunning})
	}
	return out, nil
}

type recordingGuard struct {
	stopping []ServiceScale
	started  int
}

func (g *recordingGuard) Stopping(_ context.Context, c *Container) error {
	g.stopping = append(g.stopping, *c.Scaled)
	return nil
}
func (g *recordingGuard) Started(context.Context, *Container) { g.started++ }

func taskContainer(api API) *Container {
	return &Container{api: api, Name: "st_files.1.abc", Project: "st", Service: "files", Running: true,
		Task: &Task{ID: "t1", ServiceID: "svc", ServiceName: "st_files", Slot: 1}}
}

func TestScaledDownAndBackOnEveryPath(t *testing.T) {
	for _, fail := range []bool{false, true} {
		three := uint64(3)
		f := &fakeSwarm{replicas: &three, conflict: 1}
		c := taskContainer(f)
		g := &recordingGuard{}
		c.SetGuard(g)
		var during uint64
		err := c.whileScaledDown(context.Background(), slog.New(slog.DiscardHandler), func(context.Context) error {
			during = *f.replicas
			if fail {
				return errors.New("boom")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatalf("fail=%v: err = %v", fail, err)
		}
		if during != 0 || *f.replicas != 3 {
			t.Fatalf("replicas during = %d, after = %d; want 0 then 3", during, *f.replicas)
		}
		if len(g.stopping) != 1 || g.stopping[0].Replicas != 3 || g.started != 1 {
			t.Fatalf("guard told %+v, started %d times: want the count 3 recorded before, and a start after", g.stopping, g.started)
		}
	}
}

func TestGlobalServiceIsNotScaled(t *testing.T) {
	f := &fakeSwarm{}
	err := taskContainer(f).whileScaledDown(context.Background(), slog.New(slog.DiscardHandler), func(context.Context) error {
		t.Fatal("ran with a global service running")
		return nil
	})
	if !errors.Is(err, ErrGlobalService) || len(f.updates) != 0 {
		t.Fatalf("err = %v, updates %v; want ErrGlobalService and no update", err, f.updates)
	}
}

func TestScaleBackOnlyFromZero(t *testing.T) {
	zero, two := uint64(0), uint64(2)
	f := &fakeSwarm{replicas: &zero}
	if ok, err := scale.ScaleBack(context.Background(), f, ServiceScale{ServiceID: "svc", Replicas: 3}); !ok || err != nil || *f.replicas != 3 {
		t.Fatalf("from 0: scaled=%v err=%v replicas=%d", ok, err, *f.replicas)
	}
	// Someone scaled it since: left as they chose.
	f = &fakeSwarm{replicas: &two}
	if ok, err := scale.ScaleBack(context.Background(), f, ServiceScale{ServiceID: "svc", Replicas: 3}); ok || err != nil || *f.replicas != 2 {
		t.Fatalf("from 2: scaled=%v err=%v replicas=%d", ok, err, *f.replicas)
	}
}

// goneSwarm is fakeSwarm whose task container is gone (Engine 26 removes the containers of
// the tasks a scale-down ended).
type goneSwarm struct{ *fakeSwarm }

func (goneSwarm) ContainerInspect(context.Context, string, client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	return client.ContainerInspectResult{}, cerrdefs.ErrNotFound
}

func TestWhileStoppedScalesAServiceWhoseTaskContainerIsGone(t *testing.T) {
	two := uint64(2)
	f := &fakeSwarm{replicas: &two}
	c := taskContainer(goneSwarm{f})
	ran := false
	err := c.WhileStopped(context.Background(), slog.New(slog.DiscardHandler), func(context.Context) error {
		ran = *f.replicas == 0
		return nil
	})
	if err != nil || !ran || *f.replicas != 2 {
		t.Fatalf("err=%v ran at 0=%v replicas after=%d", err, ran, *f.replicas)
	}
}
