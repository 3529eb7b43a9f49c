package commands

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/streams"
	"github.com/moby/moby/client"
)

// fakeCli is the docker CLI as the commands see it, in docker/cli's test style: its output
// is captured, its Engine client is the fake Engine (package enginetest) and its clock is
// fixed. Methods the commands must not use panic.
type fakeCli struct {
	command.Cli
	api      *enginetest.Engine
	out, err bytes.Buffer
	in       string
	now      time.Time
}

// testNow is the fake CLI's time: what ages in the output are told against.
var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newFakeCli(api *enginetest.Engine) *fakeCli {
	if api == nil {
		api = enginetest.New()
	}
	return &fakeCli{api: api, now: testNow}
}

func (f *fakeCli) Client() client.APIClient { return f.api }
func (f *fakeCli) Out() *streams.Out        { return streams.NewOut(&f.out) }
func (f *fakeCli) Err() *streams.Out        { return streams.NewOut(&f.err) }
func (f *fakeCli) In() *streams.In          { return streams.NewIn(io.NopCloser(strings.NewReader(f.in))) }
func (f *fakeCli) CurrentContext() string   { return "default" }
func (f *fakeCli) Now() time.Time           { return f.now }

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

// unreachable is an OnCall of an engine that does not answer.
func unreachable(c enginetest.Call) error {
	if c.Method == "Ping" {
		return errUnreachable
	}
	return nil
}
