// Package scale scales Swarm services: to a replica count, back to one an interrupted
// operation recorded, and waits for their tasks. docker-backup scales a service to 0 where a
// compose container would be stopped (a stopped task would be replaced).
package scale

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// API is the part of a Swarm manager's Engine API that scales services.
type API interface {
	ServiceInspect(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (client.ServiceInspectResult, error)
	ServiceUpdate(ctx context.Context, serviceID string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
}

// Service is a Swarm service scaled to 0 by an operation, and the replica count to
// scale it back to.
type Service struct {
	ServiceID, Name string
	Replicas        uint64
}

// ErrGlobalService is wrapped when a global Swarm service would have to be stopped.
var ErrGlobalService = errors.New("a global swarm service cannot be scaled to 0")

// ScaleBack scales a service an interrupted operation had scaled to 0 back to its replica
// count, unless someone has scaled it since (it is not at 0 any more) or it is gone. It
// reports whether it scaled the service.
func ScaleBack(ctx context.Context, api API, s Service) (bool, error) {
	scaled := false
	err := SetReplicas(ctx, api, s.ServiceID, func(cur uint64) (uint64, bool) {
		scaled = cur == 0
		return s.Replicas, scaled
	})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return scaled && err == nil, err
}

// SetReplicas sets a replicated service's replica count to what to returns for the current
// one (when it says so), retrying when another update came between the read and the write.
func SetReplicas(ctx context.Context, api API, id string, to func(cur uint64) (uint64, bool)) error {
	var err error
	for range 5 {
		var res client.ServiceInspectResult
		if res, err = api.ServiceInspect(ctx, id, client.ServiceInspectOptions{}); err != nil {
			return err
		}
		spec := res.Service.Spec
		if spec.Mode.Replicated == nil || spec.Mode.Replicated.Replicas == nil {
			return fmt.Errorf("swarm service %s is not replicated: %w", spec.Name, ErrGlobalService)
		}
		n, change := to(*spec.Mode.Replicated.Replicas)
		if !change {
			return nil
		}
		spec.Mode.Replicated.Replicas = &n
		if _, err = api.ServiceUpdate(ctx, id, client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec}); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // an update out of sequence: read again
	}
	return err
}

// WaitTasks waits (at most within) until the service runs want tasks and none is on its way up or down.
func WaitTasks(ctx context.Context, api API, id string, want uint64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		res, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", id)})
		if err != nil {
			return err
		}
		var running, moving uint64
		for _, t := range res.Items {
			switch {
			case t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning:
				running++
			case isActive(t.Status.State):
				moving++
			}
		}
		if running == want && moving == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d tasks running, %d starting or stopping after %s", running, want, moving, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// isActive reports whether a task in state s has a container that may run.
func isActive(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateAssigned, swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady,
		swarm.TaskStateStarting, swarm.TaskStateRunning:
		return true
	}
	return false
}
