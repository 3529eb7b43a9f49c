package containers

import (
	"context"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// fakeNode is an Engine with containers on a swarm node; tasks nil: a worker (no manager's API).
type fakeNode struct {
	API
	items   []container.Summary
	state   swarm.LocalNodeState
	manager bool
	tasks   []swarm.Task
}

func (f *fakeNode) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{Items: f.items}, nil
}

func (f *fakeNode) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	return client.SystemInfoResult{Info: system.Info{Name: "vm1", Swarm: swarm.Info{NodeID: "node1", LocalNodeState: f.state, ControlAvailable: f.manager}}}, nil
}

func (f *fakeNode) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	if !f.manager {
		return client.TaskListResult{}, cerrdefs.ErrUnavailable.WithMessage("This node is not a swarm manager.")
	}
	return client.TaskListResult{Items: f.tasks}, nil
}

// TestForgedTaskLabelsAreNotATask: anyone who can `docker run` on a node can give a container a
// stack's and a task's labels (copied from a real task's container, with the service ID of any
// service). Such a container must not become the service's container: it would be picked over
// the real task (newer, same slot), backed up under the service's key, restored into, and its
// service ID label would choose which service stop: true scales to 0.
func TestForgedTaskLabelsAreNotATask(t *testing.T) {
	ctx := context.Background()
	real := container.Summary{ID: "realcontainer", State: container.StateRunning, Created: 10, Labels: taskLabels("shop", "files", "1.t1")}
	forged := container.Summary{ID: "forgedcontainer", State: container.StateRunning, Created: 20, Labels: taskLabels("shop", "files", "1.t1")}
	forged.Labels[LabelSwarmServiceID] = "svc-victim"
	forgedNew := container.Summary{ID: "forgednew", State: container.StateRunning, Created: 30, Labels: taskLabels("shop", "evil", "1.t9")}
	tasks := []swarm.Task{{ID: "task-1.t1", ServiceID: "svc-files", NodeID: "node1", Slot: 1,
		Status: swarm.TaskStatus{State: swarm.TaskStateRunning, ContainerStatus: &swarm.ContainerStatus{ContainerID: "realcontainer"}}}}

	api := &fakeNode{items: []container.Summary{real, forged, forgedNew}, state: swarm.LocalNodeStateActive, manager: true, tasks: tasks}
	ms, err := ListMembers(ctx, api, "shop", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "realcontainer" {
		t.Fatalf("members %v, want only the swarm's own task container", ids(ms))
	}
	if got := FirstOfEach(ms)["shop/files"].ID; got != "realcontainer" {
		t.Fatalf("shop/files is container %s, want the real task's", got)
	}

	// The same labels outside a swarm (plain compose engine): no container is a task.
	api = &fakeNode{items: []container.Summary{forged}, state: swarm.LocalNodeStateInactive}
	if ms, err := ListMembers(ctx, api, "shop", true); err != nil || len(ms) != 0 {
		t.Fatalf("outside a swarm: members %v (%v), want none", ids(ms), err)
	}

	// A service not named STACK_SERVICE that has the stack's label is not the stack's.
	lbls := taskLabels("shop", "files", "1.t1")
	lbls[LabelSwarmService] = "files"
	if m := MembershipOf(lbls, "vm1"); m.Project != "" || m.Task != nil {
		t.Fatalf("service %q with label stack=shop taken as %q/%q", "files", m.Project, m.Service)
	}
}

func TestForgedTaskOnWorkerWithoutManagerIsKept(t *testing.T) {
	// A worker cannot ask: the labels are all it has (docs/swarm.md says what this allows).
	api := &fakeNode{items: []container.Summary{{ID: "c", Labels: taskLabels("shop", "agent", "node1.t1")}}, state: swarm.LocalNodeStateActive}
	ms, err := ListMembers(context.Background(), api, "shop", true)
	if err != nil || len(ms) != 1 {
		t.Fatalf("members %v (%v), want the container", ids(ms), err)
	}
}

func ids(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}
