package commands

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/streams"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeCli is the docker CLI as the commands see it, in docker/cli's test style: its output
// is captured and its Engine client is a fake. Methods the commands must not use panic.
type fakeCli struct {
	command.Cli
	api      *fakeAPI
	out, err bytes.Buffer
	in       string
}

func newFakeCli(api *fakeAPI) *fakeCli {
	if api == nil {
		api = &fakeAPI{}
	}
	return &fakeCli{api: api}
}

func (f *fakeCli) Client() client.APIClient { return f.api }
func (f *fakeCli) Out() *streams.Out        { return streams.NewOut(&f.out) }
func (f *fakeCli) Err() *streams.Out        { return streams.NewOut(&f.err) }
func (f *fakeCli) In() *streams.In          { return streams.NewIn(io.NopCloser(strings.NewReader(f.in))) }
func (f *fakeCli) CurrentContext() string   { return "default" }

// fakeAPI answers the Engine calls the commands make before any real work: ping, list and
// inspect containers, start one.
type fakeAPI struct {
	client.APIClient
	mu         sync.Mutex
	pingErr    error
	containers []container.Summary
	inspect    map[string]container.InspectResponse
	started    []string
}

func (f *fakeAPI) Ping(context.Context, client.PingOptions) (client.PingResult, error) {
	return client.PingResult{APIVersion: "1.41"}, f.pingErr
}

func (f *fakeAPI) DaemonHost() string { return "unix:///var/run/docker.sock" }

func (f *fakeAPI) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	var out []container.Summary
	for _, s := range f.containers {
		if matches(s.Labels, o.Filters) {
			out = append(out, s)
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

// matches applies label filters (key or key=value), as the Engine does.
func matches(labels map[string]string, filters client.Filters) bool {
	for term := range filters["label"] {
		k, v, hasValue := strings.Cut(term, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (f *fakeAPI) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.inspect[id]
	if !ok {
		return client.ContainerInspectResult{}, notFound{}
	}
	return client.ContainerInspectResult{Container: c}, nil
}

func (f *fakeAPI) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, id)
	c := f.inspect[id]
	c.State.Running = true
	f.inspect[id] = c
	return client.ContainerStartResult{}, nil
}

// notFound is the Engine's "no such container".
type notFound struct{}

func (notFound) Error() string  { return "No such container" }
func (notFound) NotFound() bool { return true }

var _ containers.API = (*fakeAPI)(nil)

// service makes a compose service's container known to the fake engine.
func (f *fakeAPI) service(project, service string, running bool) string {
	id := project + "-" + service + "-id"
	labels := map[string]string{containers.LabelProject: project, containers.LabelService: service, containers.LabelContainerNumber: "1"}
	f.containers = append(f.containers, container.Summary{ID: id, Names: []string{"/" + project + "-" + service + "-1"}, Labels: labels})
	if f.inspect == nil {
		f.inspect = map[string]container.InspectResponse{}
	}
	f.inspect[id] = container.InspectResponse{ID: id, Name: "/" + project + "-" + service + "-1", Image: "sha256:1",
		Config: &container.Config{Image: "example/" + service, Labels: labels},
		State:  &container.State{Running: running, FinishedAt: "2026-11-26T10:00:00Z"}, HostConfig: &container.HostConfig{}}
	return id
}

// run runs a command of the plugin with args, as `docker backup ARGS` would.
func (f *fakeCli) run(t *testing.T, args ...string) error {
	t.Helper()
	root := NewRootCommand(f)
	root.SetArgs(args)
	root.SetOut(&f.out)
	root.SetErr(&f.err)
	return root.ExecuteContext(context.Background())
}

func mustFail(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

var errUnreachable = errors.New("dial unix /var/run/docker.sock: connect: no such file or directory")
