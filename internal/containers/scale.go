package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker-backup/docker-backup/internal/swarm/scale"
	"github.com/moby/moby/client"
)

// SwarmAPI is the part of a Swarm manager's Engine API that scales services.
type SwarmAPI = scale.API

// ServiceScale is a Swarm service scaled to 0 by an operation, and the replica count to
// scale it back to.
type ServiceScale = scale.Service

// ErrGlobalService is wrapped when a global Swarm service would have to be stopped.
var ErrGlobalService = scale.ErrGlobalService

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
	svc := &ServiceScale{ServiceID: c.Task.ServiceID, Name: c.Task.ServiceName, Replicas: *mode.Replicated.Replicas}
	if svc.Replicas == 0 {
		return fn(ctx)
	}
	c.Scaled = svc
	if c.guard != nil {
		if err := c.guard.Stopping(ctx, c); err != nil {
			return fmt.Errorf("recording that swarm service %s is scaled to 0: %w", svc.Name, err)
		}
	}
	log.Info("scaling swarm service to 0", "service", svc.Name, "replicas", svc.Replicas)
	defer func() {
		backCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer cancel()
		log.Info("scaling swarm service back", "service", svc.Name, "replicas", svc.Replicas)
		if _, serr := scale.ScaleBack(backCtx, sa, *svc); serr != nil {
			err = errors.Join(err, fmt.Errorf("scaling swarm service %s back to %d failed, scale it by hand (docker service scale %s=%d): %w",
				svc.Name, svc.Replicas, svc.Name, svc.Replicas, serr))
			return
		}
		if werr := scale.WaitTasks(backCtx, sa, svc.ServiceID, svc.Replicas, startTimeout); werr != nil {
			log.Warn("the swarm service was scaled back, but its tasks are not all running yet", "service", svc.Name, "error", werr)
		}
		if c.guard != nil {
			c.guard.Started(backCtx, c)
		}
		c.Scaled = nil
	}()
	if err := scale.SetReplicas(ctx, sa, svc.ServiceID, func(uint64) (uint64, bool) { return 0, true }); err != nil {
		return fmt.Errorf("scaling swarm service %s to 0: %w", svc.Name, err)
	}
	if err := scale.WaitTasks(ctx, sa, svc.ServiceID, 0, startTimeout); err != nil {
		return fmt.Errorf("waiting for swarm service %s to stop: %w", svc.Name, err)
	}
	c.Running = false
	return fn(ctx)
}

// Resume undoes an interrupted operation's stop: it starts the container id again
// (Restart), or scales a Swarm service it had scaled to 0 back (ScaleBack). It reports
// whether it did.
func Resume(ctx context.Context, api API, id string, stoppedAt time.Time, svc *ServiceScale) (bool, error) {
	if svc == nil {
		return Restart(ctx, api, id, stoppedAt)
	}
	sa, ok := api.(SwarmAPI)
	if !ok {
		return false, fmt.Errorf("scaling swarm service %s back to %d needs a swarm manager's API", svc.Name, svc.Replicas)
	}
	return scale.ScaleBack(ctx, sa, *svc)
}
