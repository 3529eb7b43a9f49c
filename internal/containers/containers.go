// Package containers finds the containers of compose projects through the Engine API and runs
// the operations a backup needs on them: exec with streamed output, archive copy in and out,
// and stop/start with the start guaranteed.
package containers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Compose labels set by docker compose on every container it creates.
const (
	LabelProject         = "com.docker.compose.project"
	LabelService         = "com.docker.compose.service"
	LabelContainerNumber = "com.docker.compose.container-number"
	LabelOneOff          = "com.docker.compose.oneoff"
)

// API is the part of the Engine API client this package uses. Both the docker CLI's client
// and client.New satisfy it.
type API interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerStop(ctx context.Context, id string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerStart(ctx context.Context, id string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ExecCreate(ctx context.Context, id string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
	CopyFromContainer(ctx context.Context, id string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
	CopyToContainer(ctx context.Context, id string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	ContainerStatPath(ctx context.Context, id string, options client.ContainerStatPathOptions) (client.ContainerStatPathResult, error)
}

// ErrNotFound is wrapped by every error that reports a missing project, service or container.
var ErrNotFound = errors.New("not found")

// Container is one inspected container and the API to act on it.
type Container struct {
	api   API
	guard Guard

	ID      string
	Name    string // without the leading slash
	Project string // compose project, empty for a container not made by compose
	Service string // compose service, empty for a container not made by compose
	// Task is the Swarm task the container runs; nil outside Swarm. A stack is a project,
	// its services are named within it (a global service's "SERVICE@NODE").
	Task *Task
	// Scaled is set while an operation has the task's service scaled to 0.
	Scaled  *ServiceScale
	Image   string // the image reference the container was created from
	ImageID string
	Env     []string // KEY=VALUE, as in the container's config
	Args    []string // the process: entrypoint and command
	Labels  map[string]string
	Mounts  []container.MountPoint
	Running bool
	// StartedAt is when the container last started (the Engine's RFC 3339 stamp).
	StartedAt string
	// ReadonlyRootfs is set when the container's root file system is read-only: the
	// archive API can then write only inside its volumes.
	ReadonlyRootfs bool
	// StopTimeout is how long a stop waits for the container to exit before killing it.
	StopTimeout time.Duration
	// User is the user commands run as in the container (its image's USER), empty for root.
	User string
}

// String names the container for messages: "project/service (name)" or just its name.
func (c *Container) String() string {
	if c.Project != "" && c.Service != "" {
		return fmt.Sprintf("%s/%s (container %s)", c.Project, c.Service, c.Name)
	}
	return "container " + c.Name
}

// Getenv returns the value of key in the container's environment and whether it is set.
func (c *Container) Getenv(key string) (string, bool) {
	for _, kv := range c.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Inspect loads a container by name or ID.
func Inspect(ctx context.Context, api API, nameOrID string) (*Container, error) {
	res, err := api.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("no container named %q: %w", nameOrID, ErrNotFound)
		}
		return nil, fmt.Errorf("inspecting container %q: %w", nameOrID, err)
	}
	node := ""
	if res.Container.Config != nil {
		if t := TaskOf(res.Container.Config.Labels); t != nil && t.Global() {
			node = NodeName(ctx, api)
		}
	}
	return fromInspect(api, res.Container, node), nil
}

// Refresh re-reads the container's state (running or not, mounts, env).
func (c *Container) Refresh(ctx context.Context) error {
	fresh, err := Inspect(ctx, c.api, c.ID)
	if err != nil {
		return err
	}
	fresh.guard, fresh.Scaled = c.guard, c.Scaled
	*c = *fresh
	return nil
}

func fromInspect(api API, in container.InspectResponse, node string) *Container {
	c := &Container{api: api, ID: in.ID, Name: strings.TrimPrefix(in.Name, "/"), ImageID: in.Image, Mounts: in.Mounts,
		Args: append([]string{in.Path}, in.Args...), StopTimeout: 10 * time.Second}
	if in.Config != nil {
		c.Image = in.Config.Image
		c.Env = in.Config.Env
		c.Labels = in.Config.Labels
		c.User = in.Config.User
		if in.Config.StopTimeout != nil {
			c.StopTimeout = time.Duration(*in.Config.StopTimeout) * time.Second
		}
	}
	if in.State != nil {
		c.Running, c.StartedAt = in.State.Running, in.State.StartedAt
	}
	if in.HostConfig != nil {
		c.ReadonlyRootfs = in.HostConfig.ReadonlyRootfs
	}
	m := MembershipOf(c.Labels, node)
	c.Project, c.Service, c.Task = m.Project, m.Service, m.Task
	return c
}

// Find returns the container of a compose service (or a Swarm stack's). project may be
// empty when exactly one project has a service of that name. With several replicas, the
// lowest-numbered one is used.
func Find(ctx context.Context, api API, project, service string) (*Container, error) {
	ms, err := ListMembers(ctx, api, project, true)
	if err != nil {
		return nil, fmt.Errorf("listing containers of service %q: %w", service, err)
	}
	ms = slices.DeleteFunc(ms, func(m Member) bool {
		// A global Swarm service's task on this node answers to the service's own name.
		return m.Service != service && (m.Task == nil || !m.Task.Global() || !strings.HasPrefix(m.Service, service+"@"))
	})
	if len(ms) == 0 {
		return nil, notFoundError(ctx, api, project, service)
	}
	if names := projectNames(ms); len(names) > 1 {
		return nil, fmt.Errorf("service %q exists in several compose projects (%s): choose one with --project", service, strings.Join(names, ", "))
	}
	for _, m := range FirstOfEach(ms) {
		return Inspect(ctx, api, m.ID)
	}
	return nil, notFoundError(ctx, api, project, service)
}

// ResolveHere is Resolve as a command run in a directory does it: the project guessed is the
// one compose names after the current directory.
func ResolveHere(ctx context.Context, api API, project, serviceOrContainer string) (*Container, error) {
	guess := ""
	if dir, err := os.Getwd(); err == nil {
		guess = ProjectNameOf(filepath.Base(dir))
	}
	return Resolve(ctx, api, project, serviceOrContainer, guess)
}

var notProjectChar = regexp.MustCompile(`[^a-z0-9_-]`)

// ProjectNameOf derives a project name from a directory's name as docker compose does.
func ProjectNameOf(dir string) string {
	return strings.TrimLeft(notProjectChar.ReplaceAllString(strings.ToLower(dir), ""), "_-")
}

// Resolve finds a compose service by name (the lowest-numbered replica), or — when project is
// empty — failing that a container by name or ID; guess, when set, is the project tried when
// the service is found in none (the plugin's: named after the current directory).
func Resolve(ctx context.Context, api API, project, serviceOrContainer, guess string) (*Container, error) {
	c, err := Find(ctx, api, project, serviceOrContainer)
	if err == nil || !errors.Is(err, ErrNotFound) || project != "" {
		return c, err
	}
	if byName, nameErr := Inspect(ctx, api, serviceOrContainer); nameErr == nil {
		return byName, nil
	}
	if guess != "" {
		if inGuess, guessErr := Find(ctx, api, guess, serviceOrContainer); guessErr == nil {
			return inGuess, nil
		}
	}
	return nil, err
}

// Services lists the containers of a compose project (or a Swarm stack), one per service
// (the lowest-numbered replica), sorted by service name.
func Services(ctx context.Context, api API, project string) ([]*Container, error) {
	ms, err := ListMembers(ctx, api, project, true)
	if err != nil {
		return nil, err
	}
	first := FirstOfEach(ms)
	if len(first) == 0 {
		return nil, noProjectError(ctx, api, project)
	}
	var out []*Container
	for _, key := range slices.Sorted(maps.Keys(first)) {
		c, err := Inspect(ctx, api, first[key].ID)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// SoleProject is the one compose project with containers on this Engine; none or several are
// an error that says to name one (--project).
func SoleProject(ctx context.Context, api API) (string, error) {
	projects, err := Projects(ctx, api)
	if err != nil {
		return "", err
	}
	switch len(projects) {
	case 0:
		return "", fmt.Errorf("no compose projects on this Docker host")
	case 1:
		return projects[0], nil
	}
	return "", fmt.Errorf("several compose projects on this Docker host (%s): choose one with --project", strings.Join(projects, ", "))
}

// Projects lists the compose projects and Swarm stacks that have containers on this Engine.
func Projects(ctx context.Context, api API) ([]string, error) {
	ms, err := ListMembers(ctx, api, "", true)
	if err != nil {
		return nil, err
	}
	return projectNames(ms), nil
}

func notFoundError(ctx context.Context, api API, project, service string) error {
	if project == "" {
		return fmt.Errorf("no compose service named %q on this Docker host, and no container by that name: %w", service, ErrNotFound)
	}
	svcs, err := Services(ctx, api, project)
	if err != nil {
		return err
	}
	var names []string
	for _, c := range svcs {
		names = append(names, c.Service)
	}
	return fmt.Errorf("compose project %q has no service %q (its services: %s): %w", project, service, strings.Join(names, ", "), ErrNotFound)
}

func noProjectError(ctx context.Context, api API, project string) error {
	projects, err := Projects(ctx, api)
	if err != nil {
		return err
	}
	have := "none"
	if len(projects) > 0 {
		have = strings.Join(projects, ", ")
	}
	return fmt.Errorf("no compose project %q on this Docker host (projects with containers: %s): %w", project, have, ErrNotFound)
}

// ReplicaNumber is the replica number compose gave the container s (a Swarm task's slot); a
// service is backed up through its lowest-numbered replica. Without one, it sorts last.
func ReplicaNumber(s container.Summary) int {
	return MembershipOf(s.Labels, "").Replica
}

// IsOneOff reports whether s is a one-off container of a service (docker compose run), which
// is never the service's.
func IsOneOff(s container.Summary) bool { return s.Labels[LabelOneOff] == "True" }

// API is the Engine API the container was read through.
func (c *Container) API() API { return c.api }
