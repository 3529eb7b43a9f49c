package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// SwarmAPI is the part of a Swarm manager's Engine API that scales services.
type SwarmAPI interface {
	ServiceInspect(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (client.ServiceInspectResult, error)
	ServiceUpdate(ctx context.Context, serviceID string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
}

// ServiceScale is a Swarm service scaled to 0 by an operation, and the replica count to
// scale it back to.
type ServiceScale struct {
	ServiceID, Name string
	Replicas        uint64
}

// ErrGlobalService is wrapped when a global Swarm service would have to be stopped.
var ErrGlobalService = errors.New("a global swarm service cannot be scaled to 0")

// whileScaledDown is WhileStopped for a Swarm task: a stopped task would be replaced by the
// orchestrator, so its service is scaled to 0 and back to its replica count on every path.
// The count is told to the guard first, so a process that dies meanwhile has it scaled back
// (recovery, the watchdog).
func (c *Container) whileScaledDown(ctx context.Context, log *slog.Logger, fn func(context.Context) error) (err error) {
	sa, ok := c.api.(SwarmAPI)
	if !ok {
		return fmt.Errorf("%s is a task of swarm service %s, which must be scaled to 0 to stop it: this needs a swarm manager's API", c, c.Task.ServiceName)
	}
	res, err := sa.ServiceInspect(ctx, c.Task.ServiceID, client.ServiceInspectOptions{})
	if err != nil {
		return fmt.Errorf("reading swarm service %s: %w", c.Task.ServiceName, err)
	}
	mode := res.Service.Spec.Mode
	if mode.Replicated == nil || mode.Replicated.Replicas == nil {
		return fmt.Errorf("%s: docker-backup.stop needs the service stopped, but %s is global (scaling it to 0 stops it on every node): back it up running, or make it replicated: %w",
			c, c.Task.ServiceName, ErrGlobalService)
	}
	scale := &ServiceScale{ServiceID: c.Task.ServiceID, Name: c.Task.ServiceName, Replicas: *mode.Replicated.Replicas}
	if scale.Replicas == 0 {
		return fn(ctx)
	}
	c.Scaled = scale
	if c.guard != nil {
		if err := c.guard.Stopping(ctx, c); err != nil {
			return fmt.Errorf("recording that swarm service %s is scaled to 0: %w", scale.Name, err)
		}
	}
	log.Info("scaling swarm service to 0", "service", scale.Name, "replicas", scale.Replicas)
	defer func() {
		backCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer cancel()
		log.Info("scaling swarm service back", "service", scale.Name, "replicas", scale.Replicas)
		if _, serr := ScaleBack(backCtx, sa, *scale); serr != nil {
			err = errors.Join(err, fmt.Errorf("scaling swarm service %s back to %d failed, scale it by hand (docker service scale %s=%d): %w",
				scale.Name, scale.Replicas, scale.Name, scale.Replicas, serr))
			return
		}
		if werr := waitTasks(backCtx, sa, scale.ServiceID, scale.Replicas); werr != nil {
			log.Warn("the swarm service was scaled back, but its tasks are not all running yet", "service", scale.Name, "error", werr)
		}
		if c.guard != nil {
			c.guard.Started(backCtx, c)
		}
		c.Scaled = nil
	}()
	if err := setReplicas(ctx, sa, scale.ServiceID, func(uint64) (uint64, bool) { return 0, true }); err != nil {
		return fmt.Errorf("scaling swarm service %s to 0: %w", scale.Name, err)
	}
	if err := waitTasks(ctx, sa, scale.ServiceID, 0); err != nil {
		return fmt.Errorf("waiting for swarm service %s to stop: %w", scale.Name, err)
	}
	c.Running = false
	return fn(ctx)
}

// Resume undoes an interrupted operation's stop: it starts the container id again
// (Restart), or scales a Swarm service it had scaled to 0 back (ScaleBack). It reports
// whether it did.
func Resume(ctx context.Context, api API, id string, stoppedAt time.Time, scale *ServiceScale) (bool, error) {
	if scale == nil {
		return Restart(ctx, api, id, stoppedAt)
	}
	sa, ok := api.(SwarmAPI)
	if !ok {
		return false, fmt.Errorf("scaling swarm service %s back to %d needs a swarm manager's API", scale.Name, scale.Replicas)
	}
	return ScaleBack(ctx, sa, *scale)
}

// ScaleBack scales a service an interrupted operation had scaled to 0 back to its replica
// count, unless someone has scaled it since (it is not at 0 any more) or it is gone. It
// reports whether it scaled the service.
func ScaleBack(ctx context.Context, api SwarmAPI, s ServiceScale) (bool, error) {
	scaled := false
	err := setReplicas(ctx, api, s.ServiceID, func(cur uint64) (uint64, bool) {
		scaled = cur == 0
		return s.Replicas, scaled
	})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return scaled && err == nil, err
}

// setReplicas sets a replicated service's replica count to what to returns for the current
// one (when it says so), retrying when another update came between the read and the write.
func setReplicas(ctx context.Context, api SwarmAPI, id string, to func(cur uint64) (uint64, bool)) error {
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

// waitTasks waits until the service runs want tasks and none is on its way up or down.
func waitTasks(ctx context.Context, api SwarmAPI, id string, want uint64) error {
	deadline := time.Now().Add(startTimeout)
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
			return fmt.Errorf("%d of %d tasks running, %d starting or stopping after %s", running, want, moving, startTimeout)
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
