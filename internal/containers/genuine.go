package containers

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TaskLister lists a swarm's tasks (a manager's Engine API).
type TaskLister interface {
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
}

// NodeTasks reads the tasks the swarm has on node nodeID (every state), by ID: what tells a
// task's container from one that only has its labels. Anyone who can run a container can
// give it com.docker.swarm.* and com.docker.stack.namespace labels.
func NodeTasks(ctx context.Context, api TaskLister, nodeID string) (map[string]swarm.Task, error) {
	res, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("node", nodeID)})
	if err != nil {
		return nil, fmt.Errorf("listing the swarm tasks of node %s: %w", nodeID, err)
	}
	out := make(map[string]swarm.Task, len(res.Items))
	for _, t := range res.Items {
		if t.NodeID == nodeID {
			out[t.ID] = t
		}
	}
	return out, nil
}

// CheckTask reports why the container containerID, whose labels claim task t, is not that
// task's container as the swarm knows it (tasks from NodeTasks): a container made by hand
// with a task's labels must not choose which service is scaled, or whose backups it writes.
func CheckTask(tasks map[string]swarm.Task, containerID string, t *Task) error {
	real, ok := tasks[t.ID]
	switch {
	case !ok:
		return fmt.Errorf("container %.12s claims swarm task %s of service %s, which the swarm does not have on this node: it is ignored", containerID, t.ID, t.ServiceName)
	case real.ServiceID != t.ServiceID || real.Slot != t.Slot:
		return fmt.Errorf("container %.12s claims swarm task %s as service %s slot %d, but the swarm has it as service %s slot %d: it is ignored",
			containerID, t.ID, t.ServiceID, t.Slot, real.ServiceID, real.Slot)
	case real.Status.ContainerStatus != nil && real.Status.ContainerStatus.ContainerID != "" && real.Status.ContainerStatus.ContainerID != containerID:
		return fmt.Errorf("container %.12s claims swarm task %s of service %s, but that task's container is another: it is ignored", containerID, t.ID, t.ServiceName)
	}
	// A task whose container its node has not reported yet (just started) passes.
	return nil
}

// genuineOnly drops the members whose swarm task labels the swarm does not confirm. On an
// Engine outside a swarm no container is a task; on a worker without a manager's API the
// labels cannot be checked and are taken as they are.
func genuineOnly(ctx context.Context, api API, ms []Member) ([]Member, error) {
	var out []Member
	var tasks map[string]swarm.Task
	checked, inSwarm := false, true
	for _, m := range ms {
		if m.Task == nil {
			out = append(out, m)
			continue
		}
		if !checked {
			checked = true
			var err error
			if tasks, inSwarm, err = localTasks(ctx, api); err != nil {
				return nil, err
			}
		}
		if !inSwarm || (tasks != nil && CheckTask(tasks, m.ID, m.Task) != nil) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// localTasks reads the tasks of the Engine's node; nil when the Engine cannot tell (a worker,
// an API without swarm calls). inSwarm is false when the Engine is in no swarm.
func localTasks(ctx context.Context, api API) (map[string]swarm.Task, bool, error) {
	ia, iok := api.(infoAPI)
	tl, tok := api.(TaskLister)
	if !iok || !tok {
		return nil, true, nil
	}
	info, err := ia.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, false, fmt.Errorf("asking the Docker engine whether it is in a swarm: %w", err)
	}
	if info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		return nil, false, nil
	}
	tasks, err := NodeTasks(ctx, tl, info.Info.Swarm.NodeID)
	if cerrdefs.IsUnavailable(err) && !info.Info.Swarm.ControlAvailable {
		return nil, true, nil // a worker: only a manager knows the tasks
	}
	return tasks, true, err
}
