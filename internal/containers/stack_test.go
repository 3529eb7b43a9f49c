package containers

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

func taskLabels(stack, service, taskName string) map[string]string {
	return map[string]string{LabelStack: stack, LabelSwarmService: stack + "_" + service, LabelSwarmServiceID: "svc-" + service,
		LabelSwarmTaskID: "task-" + taskName, LabelSwarmTaskName: stack + "_" + service + "." + taskName, LabelSwarmNodeID: "node1"}
}

func TestMembershipOfStacksAndProjects(t *testing.T) {
	for _, tc := range []struct {
		name             string
		lbls             map[string]string
		project, service string
		replica          int
		global           bool
	}{
		{"compose", map[string]string{LabelProject: "shop", LabelService: "db", LabelContainerNumber: "2"}, "shop", "db", 2, false},
		{"replicated task", taskLabels("st", "web", "3.abc"), "st", "web", 3, false},
		{"global task", taskLabels("st", "agent", "nodeid123.abc"), "st", "agent@vm1", noReplica, true},
		{"service with an underscore", taskLabels("st", "my_db", "1.abc"), "st", "my_db", 1, false},
		{"plain container", map[string]string{"x": "y"}, "", "", noReplica, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MembershipOf(tc.lbls, "vm1")
			if m.Project != tc.project || m.Service != tc.service || m.Replica != tc.replica {
				t.Fatalf("got %q/%q replica %d, want %q/%q replica %d", m.Project, m.Service, m.Replica, tc.project, tc.service, tc.replica)
			}
			if m.Task != nil && m.Task.Global() != tc.global {
				t.Fatalf("global = %v, want %v", m.Task.Global(), tc.global)
			}
		})
	}
	// Without a node name, a global task is named after the node's ID.
	if m := MembershipOf(taskLabels("st", "agent", "nodeid123.abc"), ""); m.Service != "agent@node1" {
		t.Fatalf("got %q", m.Service)
	}
}

func TestFirstOfEachPrefersTheRunningTask(t *testing.T) {
	member := func(id, taskName string, state container.ContainerState, created int64) Member {
		s := container.Summary{ID: id, Labels: taskLabels("st", "web", taskName), State: state, Created: created}
		return Member{Summary: s, Membership: MembershipOf(s.Labels, "vm1")}
	}
	ms := []Member{
		member("old-slot1", "1.a", container.StateExited, 10),
		member("slot2", "2.b", container.StateRunning, 11),
		member("new-slot1", "1.c", container.StateRunning, 20),
	}
	if got := FirstOfEach(ms)["st/web"].ID; got != "new-slot1" {
		t.Fatalf("picked %s, want the running task of the lowest slot", got)
	}
	ms = ms[:2]
	if got := FirstOfEach(ms)["st/web"].ID; got != "slot2" {
		t.Fatalf("picked %s, want the running task over an exited one of a lower slot", got)
	}
}
