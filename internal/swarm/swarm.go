// Package swarm is what docker-backup knows of Docker Swarm: the node an Engine is, the
// labels of a task's service (deploy.labels), which node backs up a replicated service (the
// one running its lowest-slot task), and the way to a manager from a worker node.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// API is what this package needs of a manager's Engine API: what scales services, and nodes.
type API interface {
	containers.SwarmAPI
	NodeInspect(ctx context.Context, nodeID string, options client.NodeInspectOptions) (client.NodeInspectResult, error)
}

// InfoAPI is the Engine's system info.
type InfoAPI interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// Node is the Swarm node an Engine is.
type Node struct {
	ID, Name string
	// Active: the Engine is in a swarm. Manager: it can answer for the swarm's state.
	Active, Manager bool
}

// LocalNode asks the Engine which node it is.
func LocalNode(ctx context.Context, api InfoAPI) (Node, error) {
	res, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return Node{}, fmt.Errorf("asking the Docker engine whether it is in a swarm: %w", err)
	}
	in := res.Info
	return Node{ID: in.Swarm.NodeID, Name: in.Name, Active: in.Swarm.LocalNodeState == swarm.LocalNodeStateActive,
		Manager: in.Swarm.ControlAvailable}, nil
}

// Routed is a local Engine's client whose Swarm calls go to a manager's Engine: the way a
// worker node's sidecar reads services and scales them.
type Routed struct {
	*client.Client
	Manager *client.Client
}

// ServiceInspect asks the manager.
func (r Routed) ServiceInspect(ctx context.Context, id string, o client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	return r.Manager.ServiceInspect(ctx, id, o)
}

// ServiceUpdate asks the manager.
func (r Routed) ServiceUpdate(ctx context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	return r.Manager.ServiceUpdate(ctx, id, o)
}

// TaskList asks the manager.
func (r Routed) TaskList(ctx context.Context, o client.TaskListOptions) (client.TaskListResult, error) {
	return r.Manager.TaskList(ctx, o)
}

// NodeInspect asks the manager.
func (r Routed) NodeInspect(ctx context.Context, id string, o client.NodeInspectOptions) (client.NodeInspectResult, error) {
	return r.Manager.NodeInspect(ctx, id, o)
}

// ServiceList asks the manager.
func (r Routed) ServiceList(ctx context.Context, o client.ServiceListOptions) (client.ServiceListResult, error) {
	return r.Manager.ServiceList(ctx, o)
}

// ErrNoRunningTask is wrapped when a replicated service has no running task (scaled to 0,
// or between tasks).
var ErrNoRunningTask = errors.New("no running task")

// ErrNoManager is wrapped when a worker node has no way to a manager.
var ErrNoManager = errors.New("no swarm manager reachable")

// View answers the questions a sidecar asks about the tasks on its node. It caches what it
// reads for one reconcile: make a new View for each.
type View struct {
	api   API // nil: this node cannot reach a manager
	node  Node
	mu    sync.Mutex
	svcs  map[string]swarm.Service
	tasks map[string]swarm.Task // this node's, read once
}

// NewView returns a View of the swarm from node; api is nil when no manager can be reached
// (a worker node without DOCKER_BACKUP_SWARM_MANAGER).
func NewView(api API, node Node) *View {
	return &View{api: api, node: node, svcs: map[string]swarm.Service{}}
}

// Node is the node the View is from.
func (v *View) Node() Node { return v.node }

func (v *View) manager() error {
	if v.api == nil {
		return fmt.Errorf("node %s is a swarm worker and has no manager's API to ask (set DOCKER_BACKUP_SWARM_MANAGER): %w", v.node.Name, ErrNoManager)
	}
	return nil
}

// Service reads a task's service.
func (v *View) Service(ctx context.Context, t *containers.Task) (swarm.Service, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.svcs[t.ServiceID]; ok {
		return s, nil
	}
	if err := v.manager(); err != nil {
		return swarm.Service{}, err
	}
	res, err := v.api.ServiceInspect(ctx, t.ServiceID, client.ServiceInspectOptions{})
	if err != nil {
		return swarm.Service{}, fmt.Errorf("reading swarm service %s: %w", t.ServiceName, err)
	}
	v.svcs[t.ServiceID] = res.Service
	return res.Service, nil
}

// Genuine reports why the container containerID is not the swarm's task t, as its labels
// claim (labels anyone who runs a container can give it). checked is false when no manager
// can be asked (a worker without one: its containers' labels are all it has).
func (v *View) Genuine(ctx context.Context, t *containers.Task, containerID string) (checked bool, err error) {
	if v.api == nil {
		return false, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tasks == nil {
		tasks, err := containers.NodeTasks(ctx, v.api, v.node.ID)
		if err != nil {
			return false, err
		}
		v.tasks = tasks
	}
	return true, containers.CheckTask(v.tasks, containerID, t)
}

// Labels are a task's labels for docker-backup: its container's, overridden by its
// service's (deploy.labels in a stack file).
func (v *View) Labels(ctx context.Context, t *containers.Task, containerLabels map[string]string) (map[string]string, error) {
	s, err := v.Service(ctx, t)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(containerLabels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, s.Spec.Labels)
	return out, nil
}

// BackedUpHere reports whether this node backs up the service of task t: a global service's
// task always; a replicated service's when t is its lowest-slot running task. Otherwise it
// also names the node that does.
func (v *View) BackedUpHere(ctx context.Context, t *containers.Task) (bool, string, error) {
	if t.Global() {
		return true, v.node.Name, nil
	}
	lowest, err := v.LowestTask(ctx, t.ServiceID)
	if err != nil {
		return false, "", fmt.Errorf("finding the task of swarm service %s that is backed up: %w", t.ServiceName, err)
	}
	if lowest.ID == t.ID || (lowest.NodeID == v.node.ID && lowest.Slot == t.Slot) {
		return true, v.node.Name, nil
	}
	return false, v.NodeName(ctx, lowest.NodeID), nil
}

// LowestTask is a replicated service's running task with the lowest slot.
func (v *View) LowestTask(ctx context.Context, serviceID string) (swarm.Task, error) {
	if err := v.manager(); err != nil {
		return swarm.Task{}, err
	}
	return LowestTask(ctx, v.api, serviceID)
}

// LowestTask is a replicated service's running task with the lowest slot.
func LowestTask(ctx context.Context, api API, serviceID string) (swarm.Task, error) {
	res, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).
		Add("service", serviceID).Add("desired-state", string(swarm.TaskStateRunning))})
	if err != nil {
		return swarm.Task{}, fmt.Errorf("listing the tasks of swarm service %s: %w", serviceID, err)
	}
	var best *swarm.Task
	for i, t := range res.Items {
		if t.ServiceID != serviceID || t.Status.State != swarm.TaskStateRunning {
			continue
		}
		if best == nil || t.Slot < best.Slot {
			best = &res.Items[i]
		}
	}
	if best == nil {
		return swarm.Task{}, fmt.Errorf("swarm service %s: %w", serviceID, ErrNoRunningTask)
	}
	return *best, nil
}

// NodeName is a node's host name, or its ID when it cannot be read.
func (v *View) NodeName(ctx context.Context, id string) string {
	if id == v.node.ID {
		return v.node.Name
	}
	if v.api == nil {
		return id
	}
	return NodeName(ctx, v.api, id)
}

// NodeName is a node's host name, or its ID when it cannot be read.
func NodeName(ctx context.Context, api API, id string) string {
	res, err := api.NodeInspect(ctx, id, client.NodeInspectOptions{})
	if err != nil || res.Node.Description.Hostname == "" {
		return id
	}
	return res.Node.Description.Hostname
}

// Placement is a stack's service that another node backs up.
type Placement struct {
	Service string // within the stack; a global service's task SERVICE@NODE
	Node    string
}

// Elsewhere lists the services of stack enabled for backups (by their service's labels or
// their tasks' container labels) whose backups other nodes make: a replicated service whose
// lowest-slot task runs on another node, a global service's tasks on the other nodes. It
// needs a manager: nil without one.
func (v *View) Elsewhere(ctx context.Context, stack string) []Placement {
	if v.api == nil {
		return nil
	}
	la, ok := v.api.(interface {
		ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
	})
	if !ok {
		return nil
	}
	res, err := la.ServiceList(ctx, client.ServiceListOptions{Filters: make(client.Filters).Add("label", containers.LabelStack+"="+stack)})
	if err != nil {
		return nil
	}
	var out []Placement
	for _, s := range res.Items {
		name := strings.TrimPrefix(s.Spec.Name, stack+"_")
		tasks, err := v.api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).
			Add("service", s.ID).Add("desired-state", string(swarm.TaskStateRunning))})
		if err != nil || len(tasks.Items) == 0 {
			continue
		}
		lbls := map[string]string{}
		if cs := tasks.Items[0].Spec.ContainerSpec; cs != nil {
			maps.Copy(lbls, cs.Labels)
		}
		maps.Copy(lbls, s.Spec.Labels)
		if on, err := labels.Enabled(name, lbls); err != nil || !on || labels.IsSidecar(lbls) {
			continue
		}
		if s.Spec.Mode.Replicated == nil {
			for _, t := range tasks.Items {
				if t.NodeID != v.node.ID {
					n := v.NodeName(ctx, t.NodeID)
					out = append(out, Placement{Service: name + "@" + n, Node: n})
				}
			}
			continue
		}
		if low, err := LowestTask(ctx, v.api, s.ID); err == nil && low.NodeID != v.node.ID {
			out = append(out, Placement{Service: name, Node: v.NodeName(ctx, low.NodeID)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}
