package containers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// LabelDependsOn is set by docker compose v2 on every container: the services it depends on,
// as "db:service_healthy:false,cache:service_started:true".
const LabelDependsOn = "com.docker.compose.depends_on"

// Dependents returns the running containers of c's compose project that depend on c's
// service (compose depends_on), directly or through others, in the order to stop them: the
// furthest from c first. Start them again in the reverse order.
func Dependents(ctx context.Context, api API, c *Container) ([]*Container, error) {
	if c.Project == "" || c.Service == "" {
		return nil, nil
	}
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", LabelProject+"="+c.Project),
	})
	if err != nil {
		return nil, fmt.Errorf("listing containers of project %q: %w", c.Project, err)
	}
	dependsOn := map[string][]string{} // service -> services it depends on
	ids := map[string][]string{}       // service -> running container IDs
	for _, s := range res.Items {
		svc := s.Labels[LabelService]
		if s.Labels[LabelOneOff] == "True" || svc == "" {
			continue
		}
		ids[svc] = append(ids[svc], s.ID)
		if _, seen := dependsOn[svc]; seen {
			continue
		}
		for _, dep := range strings.Split(s.Labels[LabelDependsOn], ",") {
			if name, _, _ := strings.Cut(dep, ":"); name != "" {
				dependsOn[svc] = append(dependsOn[svc], name)
			}
		}
	}
	// depth[s] = the longest chain of depends_on from s down to c's service.
	depth := map[string]int{}
	var walk func(svc string, seen map[string]bool) int
	walk = func(svc string, seen map[string]bool) int {
		if svc == c.Service {
			return 0
		}
		if d, ok := depth[svc]; ok {
			return d
		}
		if seen[svc] {
			return -1 // a cycle: compose refuses these, but never loop
		}
		seen[svc] = true
		best := -1
		for _, dep := range dependsOn[svc] {
			if d := walk(dep, seen); d >= 0 && d+1 > best {
				best = d + 1
			}
		}
		depth[svc] = best
		return best
	}
	var services []string
	for svc := range ids {
		if svc != c.Service && walk(svc, map[string]bool{}) > 0 {
			services = append(services, svc)
		}
	}
	sort.Slice(services, func(i, j int) bool {
		if depth[services[i]] != depth[services[j]] {
			return depth[services[i]] > depth[services[j]]
		}
		return services[i] < services[j]
	})
	var out []*Container
	for _, svc := range services {
		sort.Strings(ids[svc])
		for _, id := range ids[svc] {
			d, err := Inspect(ctx, api, id)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// WhileAllStopped stops cs in order, calls fn, and starts them again in the reverse order on
// every path, as WhileStopped does for one container.
func WhileAllStopped(ctx context.Context, log *slog.Logger, cs []*Container, fn func(context.Context) error) error {
	if len(cs) == 0 {
		return fn(ctx)
	}
	return cs[0].WhileStopped(ctx, log, func(ctx context.Context) error {
		return WhileAllStopped(ctx, log, cs[1:], fn)
	})
}

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
