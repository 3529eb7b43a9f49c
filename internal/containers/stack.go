package containers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Labels Docker sets on the containers of Swarm tasks; docker stack deploy adds the stack's.
const (
	LabelStack          = "com.docker.stack.namespace"
	LabelSwarmService   = "com.docker.swarm.service.name"
	LabelSwarmServiceID = "com.docker.swarm.service.id"
	LabelSwarmTaskName  = "com.docker.swarm.task.name"
	LabelSwarmTaskID    = "com.docker.swarm.task.id"
	LabelSwarmNodeID    = "com.docker.swarm.node.id"
)

// Task is the Swarm task a container runs, as its labels say.
type Task struct {
	ID, ServiceID string
	// ServiceName is the Swarm service's full name (STACK_SERVICE for a stack's).
	ServiceName string
	NodeID      string
	// Slot is a replicated service's task slot (1, 2, …); 0 for a global service's task.
	Slot int
}

// Global reports whether the task belongs to a global service (one task per node).
func (t *Task) Global() bool { return t.Slot == 0 }

// TaskOf reads the Swarm task of a container from its labels; nil for a container Swarm did
// not make.
func TaskOf(lbls map[string]string) *Task {
	id := lbls[LabelSwarmTaskID]
	if id == "" || lbls[LabelSwarmServiceID] == "" {
		return nil
	}
	t := &Task{ID: id, ServiceID: lbls[LabelSwarmServiceID], ServiceName: lbls[LabelSwarmService], NodeID: lbls[LabelSwarmNodeID]}
	// The task name is SERVICE.SLOT.TASKID for a replicated service, SERVICE.NODEID.TASKID
	// for a global one.
	rest := strings.TrimPrefix(lbls[LabelSwarmTaskName], t.ServiceName+".")
	if slot, _, ok := strings.Cut(rest, "."); ok {
		if n, err := strconv.Atoi(slot); err == nil && n > 0 {
			t.Slot = n
		}
	}
	return t
}

// Membership is where a container belongs: its project (a compose project or a Swarm stack)
// and its service within it.
type Membership struct {
	Project, Service string
	// Replica orders a service's containers: compose's container number, a Swarm task's slot.
	Replica int
	Task    *Task
}

// MembershipOf reads a container's project and service from its labels. A Swarm stack is a
// project and its services are named within it; a global service's task on a node is the
// service "SERVICE@NODE" (node is the node's host name), since each node's is its own.
func MembershipOf(lbls map[string]string, node string) Membership {
	m := Membership{Project: lbls[LabelProject], Service: lbls[LabelService], Replica: noReplica}
	if n, err := strconv.Atoi(lbls[LabelContainerNumber]); err == nil {
		m.Replica = n
	}
	if m.Project != "" {
		return m
	}
	m.Task = TaskOf(lbls)
	if m.Task == nil {
		return m
	}
	m.Project = lbls[LabelStack]
	m.Service = m.Task.ServiceName
	if m.Project != "" {
		// docker stack deploy names a stack's services STACK_SERVICE: a service named
		// otherwise that has the stack's label (a label anyone can give) is not the stack's.
		var ok bool
		if m.Service, ok = strings.CutPrefix(m.Service, m.Project+"_"); !ok || m.Service == "" {
			m.Project, m.Service, m.Task = "", "", nil
			return m
		}
	}
	if m.Task.Global() {
		if node == "" {
			node = m.Task.NodeID
		}
		m.Service += "@" + node
	} else {
		m.Replica = m.Task.Slot
	}
	return m
}

const noReplica = int(^uint(0) >> 1)

// infoAPI is the Engine API's system info, which the clients this package gets have; a
// global service's task is named after the node's host name.
type infoAPI interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// NodeName is the host name of the Engine's node, for naming a global service's tasks; empty
// when the API cannot tell (the node's ID is used then).
func NodeName(ctx context.Context, api API) string {
	ia, ok := api.(infoAPI)
	if !ok {
		return ""
	}
	res, err := ia.Info(ctx, client.InfoOptions{})
	if err != nil {
		return ""
	}
	return res.Info.Name
}

// Member is a listed container and where it belongs.
type Member struct {
	container.Summary
	Membership
}

// ListMembers lists the containers of project (compose project or Swarm stack; every
// project's when empty), one-off containers (docker compose run) left out. stopped adds
// containers that are not running.
func ListMembers(ctx context.Context, api API, project string, stopped bool) ([]Member, error) {
	byCompose, byStack := LabelProject, LabelStack
	if project != "" {
		byCompose, byStack = LabelProject+"="+project, LabelStack+"="+project
	}
	seen := map[string]bool{}
	var items []container.Summary
	for _, f := range []string{byCompose, byStack} {
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: stopped, Filters: make(client.Filters).Add("label", f)})
		if err != nil {
			if project == "" {
				return nil, fmt.Errorf("listing compose projects and stacks: %w", err)
			}
			return nil, fmt.Errorf("listing containers of project %q: %w", project, err)
		}
		for _, s := range res.Items {
			if !seen[s.ID] && !IsOneOff(s) {
				seen[s.ID] = true
				items = append(items, s)
			}
		}
	}
	node := ""
	var out []Member
	for _, s := range items {
		if t := TaskOf(s.Labels); t != nil && t.Global() && node == "" {
			node = NodeName(ctx, api)
		}
		m := Member{Summary: s, Membership: MembershipOf(s.Labels, node)}
		if m.Project == "" || m.Service == "" || (project != "" && m.Project != project) {
			continue
		}
		out = append(out, m)
	}
	return genuineOnly(ctx, api, out)
}

// FirstOfEach keeps one container per project and service: the lowest replica (a Swarm
// service's running task before its stopped ones).
func FirstOfEach(ms []Member) map[string]Member {
	first := map[string]Member{}
	for _, m := range ms {
		key := m.Project + "/" + m.Service
		if cur, ok := first[key]; !ok || before(m, cur) {
			first[key] = m
		}
	}
	return first
}

func before(a, b Member) bool {
	if a.Task != nil && b.Task != nil {
		// Old tasks keep their slot: a running one first, then the newest.
		ra, rb := a.State == container.StateRunning, b.State == container.StateRunning
		if ra != rb {
			return ra
		}
		if a.Replica == b.Replica {
			return a.Created > b.Created
		}
	}
	return a.Replica < b.Replica
}

// projectNames lists the distinct projects of ms, sorted.
func projectNames(ms []Member) []string {
	set := map[string]bool{}
	for _, m := range ms {
		set[m.Project] = true
	}
	return slices.Sorted(maps.Keys(set))
}
