package swarm

import (
	"context"
	"errors"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

type fakeManager struct {
	API
	tasks   []swarm.Task
	labels  map[string]string
	inspect int
}

func (f *fakeManager) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	return client.TaskListResult{Items: f.tasks}, nil
}

func (f *fakeManager) ServiceInspect(_ context.Context, id string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	f.inspect++
	s := swarm.Service{ID: id}
	s.Spec.Labels = f.labels
	return client.ServiceInspectResult{Service: s}, nil
}

func (f *fakeManager) NodeInspect(_ context.Context, id string, _ client.NodeInspectOptions) (client.NodeInspectResult, error) {
	var n swarm.Node
	n.Description.Hostname = "host-" + id
	return client.NodeInspectResult{Node: n}, nil
}

func task(id, node string, slot int, state swarm.TaskState) swarm.Task {
	return swarm.Task{ID: id, ServiceID: "svc", NodeID: node, Slot: slot, Status: swarm.TaskStatus{State: state}, DesiredState: swarm.TaskStateRunning}
}

func TestTheLowestRunningSlotIsBackedUp(t *testing.T) {
	f := &fakeManager{tasks: []swarm.Task{
		task("t1", "n2", 1, swarm.TaskStatePreparing), // not running yet: not chosen
		task("t2", "n1", 2, swarm.TaskStateRunning),
		task("t3", "n2", 3, swarm.TaskStateRunning),
	}}
	here := NewView(f, Node{ID: "n1", Name: "one", Active: true})
	if ok, _, err := here.BackedUpHere(context.Background(), &containers.Task{ID: "t2", ServiceID: "svc", Slot: 2}); !ok || err != nil {
		t.Fatalf("node n1 runs the lowest running slot: ok=%v err=%v", ok, err)
	}
	there := NewView(f, Node{ID: "n2", Name: "two", Active: true})
	ok, node, err := there.BackedUpHere(context.Background(), &containers.Task{ID: "t3", ServiceID: "svc", Slot: 3})
	if ok || err != nil || node != "host-n1" {
		t.Fatalf("node n2: ok=%v node=%q err=%v; want not here, host-n1", ok, node, err)
	}
	// A global service's task is always backed up by its node.
	if ok, _, _ := there.BackedUpHere(context.Background(), &containers.Task{ID: "g", ServiceID: "svc2"}); !ok {
		t.Fatal("a global service's task is its node's to back up")
	}
	f.tasks = nil
	if _, _, err := here.BackedUpHere(context.Background(), &containers.Task{ID: "t2", ServiceID: "svc", Slot: 2}); !errors.Is(err, ErrNoRunningTask) {
		t.Fatalf("no running task: err = %v", err)
	}
}

func TestServiceLabelsWinAndAreReadOnce(t *testing.T) {
	f := &fakeManager{labels: map[string]string{"docker-backup.schedule": "@daily"}}
	v := NewView(f, Node{ID: "n1", Active: true})
	tk := &containers.Task{ID: "t", ServiceID: "svc", Slot: 1}
	for range 2 {
		got, err := v.Labels(context.Background(), tk, map[string]string{"docker-backup.schedule": "@hourly", "docker-backup.enable": "true"})
		if err != nil || got["docker-backup.schedule"] != "@daily" || got["docker-backup.enable"] != "true" {
			t.Fatalf("labels %v, err %v", got, err)
		}
	}
	if f.inspect != 1 {
		t.Fatalf("service read %d times in one view", f.inspect)
	}
	// A worker without a manager cannot read them.
	if _, err := NewView(nil, Node{Name: "w"}).Labels(context.Background(), tk, nil); !errors.Is(err, ErrNoManager) {
		t.Fatalf("err = %v", err)
	}
}

// TestGenuineRefusesForgedTaskLabels: the reconciler's check that a container claiming a
// task (labels anyone can give a `docker run` container) is that task's container.
func TestGenuineRefusesForgedTaskLabels(t *testing.T) {
	ctx := context.Background()
	real := task("t1", "n1", 1, swarm.TaskStateRunning)
	real.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: "c-real"}
	other := task("t2", "n2", 1, swarm.TaskStateRunning)
	other.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: "c-other"}
	v := NewView(&fakeManager{tasks: []swarm.Task{real, other}}, Node{ID: "n1", Name: "a", Active: true})
	claim := func(id, svc string, slot int) *containers.Task {
		return &containers.Task{ID: id, ServiceID: svc, ServiceName: "shop_x", NodeID: "n1", Slot: slot}
	}
	if _, err := v.Genuine(ctx, claim("t1", "svc", 1), "c-real"); err != nil {
		t.Fatalf("the real task's container refused: %v", err)
	}
	for name, tc := range map[string]struct {
		t         *containers.Task
		container string
	}{
		"another container with the task's labels": {claim("t1", "svc", 1), "c-forged"},
		"the task's ID, another service's ID":      {claim("t1", "svc-victim", 1), "c-forged"},
		"a task the swarm does not have":           {claim("t9", "svc", 1), "c-forged"},
		"another node's task":                      {claim("t2", "svc", 1), "c-forged"},
		"another slot":                             {claim("t1", "svc", 2), "c-real"},
	} {
		if checked, err := v.Genuine(ctx, tc.t, tc.container); !checked || err == nil {
			t.Errorf("%s: taken as genuine", name)
		}
	}
	if checked, err := NewView(nil, Node{ID: "n1", Active: true}).Genuine(ctx, claim("t9", "svc", 1), "c"); checked || err != nil {
		t.Errorf("a worker without a manager cannot check, and must not refuse: %v", err)
	}
}
