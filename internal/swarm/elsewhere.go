package swarm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/client"
)

// ElsewhereError says that a stack's service runs on other Swarm nodes than the Engine's:
// its sidecar is theirs to ask. It wraps ErrNotFound.
type ElsewhereError struct {
	Stack, Service string
	Nodes          []string // host names of the nodes that run it
	This           string   // the Engine's node
	// How says how to reach one of Nodes; empty: a generic hint.
	How string
}

func (e *ElsewhereError) Error() string {
	how := e.How
	if how == "" {
		how = "run the command against that node's Docker engine (docker --context CONTEXT-OF-THAT-NODE backup …, or DOCKER_HOST)"
	}
	return fmt.Sprintf("swarm service %s of stack %s runs on node %s, not on this Engine's node (%s): %s", e.Service, e.Stack, strings.Join(e.Nodes, ", "), e.This, how)
}

func (e *ElsewhereError) Unwrap() error { return containers.ErrNotFound }

// Elsewhere explains, when api is a Swarm manager's and the stack project has the service on
// other nodes, which nodes run it (an *ElsewhereError, which wraps containers.ErrNotFound);
// nil otherwise. Ask it when a service is not found on this Engine.
func Elsewhere(ctx context.Context, api interface {
	API
	InfoAPI
}, project, service string) error {
	if project == "" {
		return nil
	}
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil || !info.Info.Swarm.ControlAvailable {
		return nil
	}
	name, node, global := strings.Cut(service, "@")
	res, err := api.ServiceInspect(ctx, project+"_"+name, client.ServiceInspectOptions{})
	if err != nil || res.Service.Spec.Labels[containers.LabelStack] != project {
		return nil
	}
	if res.Service.Spec.Mode.Replicated == nil {
		if global {
			return &ElsewhereError{Stack: project, Service: service, Nodes: []string{node}, This: info.Info.Name}
		}
		return fmt.Errorf("stack %s: %s is a global service, one task per node; name a node's task as %s@NODE (this node's: %s@%s): %w",
			project, name, name, name, info.Info.Name, containers.ErrNotFound)
	}
	tasks, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", res.Service.ID).Add("desired-state", "running")})
	if err != nil {
		return nil
	}
	var nodes []string
	for _, t := range tasks.Items {
		if t.NodeID == info.Info.Swarm.NodeID {
			return nil
		}
		n := NodeName(ctx, api, t.NodeID)
		if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return fmt.Errorf("swarm service %s of stack %s has no running task: %w", name, project, containers.ErrNotFound)
	}
	slices.Sort(nodes)
	return &ElsewhereError{Stack: project, Service: name, Nodes: nodes, This: info.Info.Name}
}
