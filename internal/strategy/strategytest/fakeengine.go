// Package strategytest helps the strategies' tests: a fake Engine (enginetest's) of one
// database container that records commands, files written and stops, and answers commands
// from a script.
package strategytest

import (
	"context"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/moby/moby/api/types/container"
)

// FakeEngine is an Engine API for testing strategies up to the exec boundary: the container
// "shop-db-1" of the fields below (set them before Container), every command with its
// environment and stdin recorded (Execs), every file written into the container (Written),
// commands answered by Reply. Exec streams use the real multiplexed protocol.
type FakeEngine struct {
	*enginetest.Engine
	env     []string
	User    string // the image's USER
	Running bool
	Files   map[string]string // path → content, for CopyFromContainer
	Mounts  []container.MountPoint
	Links   map[string]string // path → link target, for ContainerStatPath
	// Reply answers a command: stdout, stderr, exit code.
	Reply func(cmd []string, stdin []byte) (string, string, int)
}

// NewFakeEngine returns a running container's fake Engine whose environment is env; every
// command succeeds silently until Reply says otherwise.
func NewFakeEngine(env ...string) *FakeEngine {
	return &FakeEngine{env: env, Running: true, Files: map[string]string{}, Links: map[string]string{},
		Reply: func([]string, []byte) (string, string, int) { return "", "", 0 }}
}

// Container is the fake Engine's one container, as the strategies see it, made of the
// fields as they are now.
func (f *FakeEngine) Container(t interface{ Fatal(...any) }) *containers.Container {
	opts := []enginetest.Option{enginetest.WithID("fake"), enginetest.WithImage("mongo:7"), enginetest.WithEnv(f.env...),
		enginetest.WithUser(f.User), enginetest.WithCommand("docker-entrypoint.sh")}
	if !f.Running {
		opts = append(opts, enginetest.Stopped())
	}
	for _, m := range f.Mounts {
		opts = append(opts, enginetest.WithMount(m))
	}
	for p, content := range f.Files {
		opts = append(opts, enginetest.WithFiles(enginetest.File{Path: p, Content: content, Mode: 0o400}))
	}
	for p, target := range f.Links {
		opts = append(opts, enginetest.WithLink(p, target))
	}
	f.Engine = enginetest.New(enginetest.Service("shop", "db", opts...))
	f.OnExec = func(x enginetest.Exec) enginetest.ExecResult {
		stdout, stderr, code := f.Reply(x.Cmd, x.Stdin)
		return enginetest.ExecResult{Stdout: stdout, Stderr: stderr, ExitCode: code}
	}
	c, err := containers.Inspect(context.Background(), f, "fake")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Stops counts the container's stops.
func (f *FakeEngine) Stops() int { return len(f.Calls("ContainerStop")) }
