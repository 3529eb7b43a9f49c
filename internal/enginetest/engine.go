// Package enginetest is a fake Docker Engine for unit tests, in docker/cli's style: an
// in-memory Engine of containers (with their labels, mounts, files and state), commands run
// in them answered by the test, volumes and events; and builders to describe the containers:
//
//	e := enginetest.New(
//		enginetest.Service("shop", "db", enginetest.WithImage("postgres:16"), enginetest.WithVolume("pgdata", "/var/lib/postgresql/data")),
//		enginetest.Service("shop", "backup", enginetest.Sidecar()),
//	)
//	e.OnExec = func(x enginetest.Exec) enginetest.ExecResult { return enginetest.ExecResult{Stdout: "16.4\n"} }
//
// An *Engine is a client.APIClient, so it serves every interface of the Engine API the
// project declares (containers.API, scratch.Engine, sidecar.API, …) and the docker CLI's
// Client(). Calls it does not fake panic: a test sees at once what the code asked for.
package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// Engine is the fake Engine. Set its exported fields before the code under test runs.
type Engine struct {
	// APIClient is nil: a call the fake does not answer panics.
	client.APIClient

	// OnExec answers a command run in a container; nil: every command succeeds silently.
	OnExec func(Exec) ExecResult
	// OnCall is asked first by every call the fake answers; an error it returns is the
	// call's (the engine unreachable, a start that fails).
	OnCall func(Call) error
	// Name is the engine's host name (Info); Host its address (DaemonHost).
	Name, Host string

	mu         sync.Mutex
	containers []*ContainerSpec
	volumes    []volume.Volume
	execs      map[string]*execState
	calls      []Call
	ran        []Exec
	written    []File
	subs       map[chan events.Message]client.Filters
}

// Call is one call of the Engine API: its method's name and what it was about (a container's
// ID or name as the caller gave it, an exec's ID, a volume's name; "" for the engine itself).
type Call struct {
	Method string
	ID     string
}

// New is an Engine that knows the containers cs.
func New(cs ...*ContainerSpec) *Engine {
	e := &Engine{Name: "fake-engine", Host: "unix:///var/run/docker.sock", execs: map[string]*execState{},
		subs: map[chan events.Message]client.Filters{}}
	e.Add(cs...)
	return e
}

// Add makes containers known to the engine (a copy of each: change them through the Engine
// afterwards). A container without an ID gets one made from its name.
func (e *Engine) Add(cs ...*ContainerSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range cs {
		c = c.clone()
		if c.ID == "" {
			c.ID = idOf(c.Name)
		}
		e.containers = append(e.containers, c)
	}
}

// AddVolume makes volumes known to the engine.
func (e *Engine) AddVolume(vs ...volume.Volume) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.volumes = append(e.volumes, vs...)
}

// Get is a copy of the container named or with the ID nameOrID as it is now, and whether
// there is one.
func (e *Engine) Get(nameOrID string) (ContainerSpec, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(nameOrID)
	if c == nil {
		return ContainerSpec{}, false
	}
	return *c.clone(), true
}

// Set changes the container named or with the ID nameOrID (its state, labels, files) while
// the engine runs: fn is called with the engine locked.
func (e *Engine) Set(nameOrID string, fn func(*ContainerSpec)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.find(nameOrID); c != nil {
		fn(c)
	}
}

// IDOf is the ID of the container named nameOrID ("" when there is none).
func (e *Engine) IDOf(nameOrID string) string {
	c, _ := e.Get(nameOrID)
	return c.ID
}

// Calls are the calls made so far, in order; only those of the methods given, when some are.
func (e *Engine) Calls(methods ...string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Call
	for _, c := range e.calls {
		if len(methods) == 0 || slices.Contains(methods, c.Method) {
			out = append(out, c)
		}
	}
	return out
}

// Execs are the commands that ran to their end, in the order they ended.
func (e *Engine) Execs() []Exec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ran)
}

// Written are the files written into containers (CopyToContainer), in order.
func (e *Engine) Written() []File {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.written)
}

// call records a call and asks OnCall about it.
func (e *Engine) call(method, id string) error {
	e.mu.Lock()
	e.calls = append(e.calls, Call{Method: method, ID: id})
	on := e.OnCall
	e.mu.Unlock()
	if on != nil {
		return on(Call{Method: method, ID: id})
	}
	return nil
}

// find is the container with this ID, unique ID prefix, or name (with or without its
// leading slash), as the Engine resolves them; nil when none. The caller holds mu.
func (e *Engine) find(nameOrID string) *ContainerSpec {
	if nameOrID == "" {
		return nil
	}
	name := strings.TrimPrefix(nameOrID, "/")
	for _, c := range e.containers {
		if c.ID == nameOrID || c.Name == name {
			return c
		}
	}
	var found *ContainerSpec
	for _, c := range e.containers {
		if strings.HasPrefix(c.ID, nameOrID) {
			if found != nil {
				return nil // ambiguous
			}
			found = c
		}
	}
	return found
}

// notFound is the Engine's "No such container" (cerrdefs.IsNotFound).
func notFound(what, id string) error {
	//lint:ignore ST1005 the Engine's own words
	return fmt.Errorf("No such %s: %s: %w", what, id, cerrdefs.ErrNotFound)
}

// idOf is a container ID made from a name: 64 hexadecimal digits, the same on every run.
func idOf(name string) string {
	sum := sha256.Sum256([]byte("enginetest " + name))
	return hex.EncodeToString(sum[:])
}

// Ping answers that the engine is up (API 1.41).
func (e *Engine) Ping(context.Context, client.PingOptions) (client.PingResult, error) {
	if err := e.call("Ping", ""); err != nil {
		return client.PingResult{}, err
	}
	return client.PingResult{APIVersion: "1.41", OSType: "linux"}, nil
}

// DaemonHost is Host.
func (e *Engine) DaemonHost() string { return e.Host }

// Info names the engine.
func (e *Engine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	if err := e.call("Info", ""); err != nil {
		return client.SystemInfoResult{}, err
	}
	return client.SystemInfoResult{Info: system.Info{Name: e.Name, OSType: "linux", DockerRootDir: "/var/lib/docker"}}, nil
}

// ContainerList lists the containers that match the label filters (KEY or KEY=VALUE, all of
// them); only running ones unless All.
func (e *Engine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	if err := e.call("ContainerList", ""); err != nil {
		return client.ContainerListResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []container.Summary
	for _, c := range e.containers {
		if (o.All || c.Running) && matchLabels(c.Labels, o.Filters) {
			out = append(out, c.summary())
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

// matchLabels applies the label filters (KEY or KEY=VALUE) as the Engine does.
func matchLabels(labels map[string]string, f client.Filters) bool {
	for term := range f["label"] {
		k, v, hasValue := strings.Cut(term, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (c *ContainerSpec) summary() container.Summary {
	state := container.StateExited
	if c.Running {
		state = container.StateRunning
	}
	return container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: c.ImageID,
		Labels: maps.Clone(c.Labels), State: state, Mounts: slices.Clone(c.Mounts)}
}

// ContainerInspect inspects a container by ID, unique ID prefix or name.
func (e *Engine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	if err := e.call("ContainerInspect", id); err != nil {
		return client.ContainerInspectResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return client.ContainerInspectResult{}, notFound("container", id)
	}
	return client.ContainerInspectResult{Container: c.inspect()}, nil
}

func (c *ContainerSpec) inspect() container.InspectResponse {
	status := container.StateExited
	if c.Running {
		status = container.StateRunning
	}
	cfg := &container.Config{Image: c.Image, Env: slices.Clone(c.Env), Labels: maps.Clone(c.Labels), User: c.User}
	if c.StopTimeout != nil {
		s := *c.StopTimeout
		cfg.StopTimeout = &s
	}
	return container.InspectResponse{ID: c.ID, Name: "/" + c.Name, Image: c.ImageID, Path: c.Path, Args: slices.Clone(c.Args),
		Mounts: slices.Clone(c.Mounts), Config: cfg,
		State:      &container.State{Status: status, Running: c.Running, FinishedAt: c.FinishedAt},
		HostConfig: &container.HostConfig{ReadonlyRootfs: c.ReadonlyRootfs}}
}

// ContainerStop stops a container (one already stopped stays so).
func (e *Engine) ContainerStop(_ context.Context, id string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	if err := e.call("ContainerStop", id); err != nil {
		return client.ContainerStopResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return client.ContainerStopResult{}, notFound("container", id)
	}
	if c.Running {
		c.Running, c.FinishedAt = false, time.Now().UTC().Format(time.RFC3339Nano)
	}
	return client.ContainerStopResult{}, nil
}

// ContainerStart starts a container.
func (e *Engine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	if err := e.call("ContainerStart", id); err != nil {
		return client.ContainerStartResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return client.ContainerStartResult{}, notFound("container", id)
	}
	c.Running = true
	return client.ContainerStartResult{}, nil
}

// ContainerCreate creates a stopped container of the options' configuration.
func (e *Engine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	if err := e.call("ContainerCreate", o.Name); err != nil {
		return client.ContainerCreateResult{}, err
	}
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("created-%d", len(e.Calls("ContainerCreate")))
	}
	c := Container(name, Stopped())
	if cfg := o.Config; cfg != nil {
		c.Image, c.Env, c.User, c.Labels = cfg.Image, slices.Clone(cfg.Env), cfg.User, maps.Clone(cfg.Labels)
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
	}
	c.FinishedAt = ""
	e.Add(c)
	return client.ContainerCreateResult{ID: e.IDOf(name)}, nil
}

// ContainerRemove removes a container (a running one only with Force).
func (e *Engine) ContainerRemove(_ context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	if err := e.call("ContainerRemove", id); err != nil {
		return client.ContainerRemoveResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	switch {
	case c == nil:
		return client.ContainerRemoveResult{}, notFound("container", id)
	case c.Running && !o.Force:
		return client.ContainerRemoveResult{}, fmt.Errorf("cannot remove container %s: container is running: stop the container before removing or force remove: %w", c.Name, cerrdefs.ErrConflict)
	}
	e.containers = slices.DeleteFunc(e.containers, func(x *ContainerSpec) bool { return x == c })
	return client.ContainerRemoveResult{}, nil
}

// VolumeList lists the volumes that match the label filters.
func (e *Engine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	if err := e.call("VolumeList", ""); err != nil {
		return client.VolumeListResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []volume.Volume
	for _, v := range e.volumes {
		if matchLabels(v.Labels, o.Filters) {
			out = append(out, v)
		}
	}
	return client.VolumeListResult{Items: out}, nil
}

// DiskUsage answers for volumes only: the volumes added, with the UsageData they were given.
func (e *Engine) DiskUsage(_ context.Context, o client.DiskUsageOptions) (client.DiskUsageResult, error) {
	if err := e.call("DiskUsage", ""); err != nil {
		return client.DiskUsageResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var r client.DiskUsageResult
	if o.Volumes {
		r.Volumes.TotalCount = int64(len(e.volumes))
		if o.Verbose {
			r.Volumes.Items = slices.Clone(e.volumes)
		}
	}
	return r, nil
}

// VolumeInspect inspects a volume by name.
func (e *Engine) VolumeInspect(_ context.Context, name string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	if err := e.call("VolumeInspect", name); err != nil {
		return client.VolumeInspectResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.volumes {
		if v.Name == name {
			return client.VolumeInspectResult{Volume: v}, nil
		}
	}
	return client.VolumeInspectResult{}, notFound("volume", name)
}

// VolumeRemove removes a volume.
func (e *Engine) VolumeRemove(_ context.Context, name string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	if err := e.call("VolumeRemove", name); err != nil {
		return client.VolumeRemoveResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.volumes)
	e.volumes = slices.DeleteFunc(e.volumes, func(v volume.Volume) bool { return v.Name == name })
	if len(e.volumes) == n {
		return client.VolumeRemoveResult{}, notFound("volume", name)
	}
	return client.VolumeRemoveResult{}, nil
}
