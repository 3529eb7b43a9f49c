package containers

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Restart is what recovery does for a container that an interrupted operation had stopped:
// it waits for a stop that may still be in progress, then starts the container again unless
// it is running, gone, or was stopped before stoppedAt (by someone else: then it was meant to
// stay stopped). It reports whether it started the container.
func Restart(ctx context.Context, api API, id string, stoppedAt time.Time) (bool, error) {
	var deadline time.Time
	for {
		res, err := api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("inspecting container %s: %w", id, err)
		}
		st := res.Container.State
		if st == nil {
			return false, fmt.Errorf("container %s has no state", id)
		}
		name := strings.TrimPrefix(res.Container.Name, "/")
		if st.Running && !st.Restarting {
			// A stop asked for just before the crash may still be under way: wait for the
			// container's stop timeout, and a margin.
			if deadline.IsZero() {
				grace := 10 * time.Second
				if cfg := res.Container.Config; cfg != nil && cfg.StopTimeout != nil {
					grace = time.Duration(*cfg.StopTimeout) * time.Second
				}
				deadline = time.Now().Add(grace + 15*time.Second)
			}
			if time.Now().After(deadline) {
				return false, nil
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if finished, err := time.Parse(time.RFC3339Nano, st.FinishedAt); err == nil && !stoppedAt.IsZero() &&
			finished.Before(stoppedAt.Add(-time.Second)) {
			return false, nil // it was already stopped before the operation stopped it
		}
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return false, fmt.Errorf("starting container %s: %w", name, err)
		}
		return true, nil
	}
}
