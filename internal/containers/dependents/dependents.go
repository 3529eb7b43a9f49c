// Package dependents finds the containers of a compose project that depend on a service
// (depends_on), in the order to stop them, and stops them around an operation.
package dependents

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/client"
)

// LabelDependsOn is set by docker compose v2 on every container: the services it depends on,
// as "db:service_healthy:false,cache:service_started:true".
const LabelDependsOn = "com.docker.compose.depends_on"

// Of returns the running containers of c's compose project that depend on c's
// service (compose depends_on), directly or through others, in the order to stop them: the
// furthest from c first. Start them again in the reverse order.
func Of(ctx context.Context, api containers.API, c *containers.Container) ([]*containers.Container, error) {
	if c.Project == "" || c.Service == "" {
		return nil, nil
	}
	res, err := api.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", containers.LabelProject+"="+c.Project),
	})
	if err != nil {
		return nil, fmt.Errorf("listing containers of project %q: %w", c.Project, err)
	}
	dependsOn := map[string][]string{} // service -> services it depends on
	ids := map[string][]string{}       // service -> running container IDs
	for _, s := range res.Items {
		svc := s.Labels[containers.LabelService]
		if s.Labels[containers.LabelOneOff] == "True" || svc == "" {
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
	var out []*containers.Container
	for _, svc := range services {
		sort.Strings(ids[svc])
		for _, id := range ids[svc] {
			d, err := containers.Inspect(ctx, api, id)
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
func WhileAllStopped(ctx context.Context, log *slog.Logger, cs []*containers.Container, fn func(context.Context) error) error {
	if len(cs) == 0 {
		return fn(ctx)
	}
	return cs[0].WhileStopped(ctx, log, func(ctx context.Context) error {
		return WhileAllStopped(ctx, log, cs[1:], fn)
	})
}
