// Package strategytest helps the strategies' tests: a fake Engine that records commands, files
// written and stops, and answers commands from a script.
package strategytest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// FakeEngine is an Engine API for testing strategies up to the exec boundary: it records
// every command with its environment and stdin, every file written into the container, and
// answers commands from a script. Exec streams use the real multiplexed protocol.
type FakeEngine struct {
	containers.API
	mu      sync.Mutex
	env     []string
	args    []string
	User    string // the image's USER
	Running bool
	Files   map[string]string // path → content, for CopyFromContainer
	Mounts  []container.MountPoint
	Links   map[string]string // path → link target, for ContainerStatPath; other paths are directories
	Stops   int               // ContainerStop calls
	// reply answers a command: stdout, stderr, exit code.
	Reply func(cmd []string, stdin []byte) (string, string, int)

	Execs   []fakeExec
	Written []writtenFile
	pending map[string]*fakeExec
}

type fakeExec struct {
	Cmd   []string
	Env   []string
	Stdin []byte
	code  int
}

type writtenFile struct {
	Path     string
	Mode     int64
	UID, GID int
	Content  string
}

// NewFakeEngine returns a running container's fake Engine whose environment is env; every
// command succeeds silently until Reply says otherwise.
func NewFakeEngine(env ...string) *FakeEngine {
	return &FakeEngine{env: env, Running: true, Files: map[string]string{}, pending: map[string]*fakeExec{},
		Reply: func([]string, []byte) (string, string, int) { return "", "", 0 }}
}

// Container is the fake Engine's one container, "fake", as the strategies see it.
func (f *FakeEngine) Container(t interface{ Fatal(...any) }) *containers.Container {
	c, err := containers.Inspect(context.Background(), f, "fake")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *FakeEngine) ContainerInspect(ctx context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	return client.ContainerInspectResult{Container: container.InspectResponse{
		ID: id, Name: "/shop-db-1", Path: "docker-entrypoint.sh", Args: f.args, Mounts: f.Mounts,
		Config: &container.Config{Image: "mongo:7", Env: f.env, User: f.User, Labels: map[string]string{
			containers.LabelProject: "shop", containers.LabelService: "db"}},
		State: &container.State{Running: f.Running},
	}}, nil
}

func (f *FakeEngine) ExecCreate(ctx context.Context, id string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Running {
		return client.ExecCreateResult{}, errors.New("container fake is not running")
	}
	execID := string(rune('a' + len(f.pending)))
	f.pending[execID] = &fakeExec{Cmd: o.Cmd, Env: o.Env}
	return client.ExecCreateResult{ID: execID}, nil
}

func (f *FakeEngine) ExecAttach(ctx context.Context, execID string, _ client.ExecAttachOptions) (client.ExecAttachResult, error) {
	f.mu.Lock()
	e := f.pending[execID]
	f.mu.Unlock()
	ours, theirs := net.Pipe()
	// A command that reads stdin reads it to the end, then answers.
	var out bytes.Buffer
	r, w := io.Pipe()
	go func() {
		var in []byte
		if needsStdin(e.Cmd) {
			in, _ = io.ReadAll(theirs)
		}
		stdout, stderr, code := f.Reply(e.Cmd, in)
		frame(&out, 1, stdout)
		frame(&out, 2, stderr)
		f.mu.Lock()
		e.Stdin, e.code = in, code
		f.Execs = append(f.Execs, *e)
		f.mu.Unlock()
		w.Write(out.Bytes())
		w.Close()
		theirs.Close()
	}()
	return client.ExecAttachResult{HijackedResponse: client.HijackedResponse{Conn: halfCloser{ours}, Reader: bufio.NewReader(r)}}, nil
}

// halfCloser gives net.Pipe the CloseWrite that Docker's hijacked connections have: the
// command sees the end of its input.
type halfCloser struct{ net.Conn }

func (h halfCloser) CloseWrite() error { return h.Conn.Close() }

// frame writes one frame of Docker's multiplexed stream: stream id, three zero bytes, the
// big-endian payload length, the payload.
func frame(w *bytes.Buffer, stream byte, payload string) {
	if payload == "" {
		return
	}
	hdr := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	w.Write(hdr)
	w.WriteString(payload)
}

// needsStdin: the restore tools read the archive from stdin.
func needsStdin(cmd []string) bool { return cmd[0] == "mongorestore" }

func (f *FakeEngine) ExecInspect(ctx context.Context, execID string, _ client.ExecInspectOptions) (client.ExecInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.Execs {
		if e.Cmd[0] == f.pending[execID].Cmd[0] && strings.Join(e.Cmd, " ") == strings.Join(f.pending[execID].Cmd, " ") {
			return client.ExecInspectResult{ExitCode: e.code}, nil
		}
	}
	return client.ExecInspectResult{Running: true}, nil
}

func (f *FakeEngine) CopyToContainer(ctx context.Context, id string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error) {
	tr := tar.NewReader(o.Content)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return client.CopyToContainerResult{}, nil
		}
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		b, _ := io.ReadAll(tr)
		f.mu.Lock()
		f.Written = append(f.Written, writtenFile{Path: o.DestinationPath + "/" + hdr.Name, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Content: string(b)})
		f.mu.Unlock()
	}
}

func (f *FakeEngine) CopyFromContainer(ctx context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	content, ok := f.Files[o.SourcePath]
	if !ok {
		return client.CopyFromContainerResult{}, errors.New("Could not find the file " + o.SourcePath + " in container fake")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: o.SourcePath[strings.LastIndex(o.SourcePath, "/")+1:], Mode: 0o400, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	return client.CopyFromContainerResult{Content: io.NopCloser(&buf)}, nil
}

func (f *FakeEngine) ContainerStatPath(ctx context.Context, id string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if target, ok := f.Links[o.Path]; ok {
		return client.ContainerStatPathResult{Stat: container.PathStat{Name: o.Path, LinkTarget: target}}, nil
	}
	return client.ContainerStatPathResult{Stat: container.PathStat{Name: o.Path, Mode: fs.ModeDir | 0o755}}, nil
}

func (f *FakeEngine) ContainerStop(ctx context.Context, id string, _ client.ContainerStopOptions) (client.ContainerStopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Running = false
	f.Stops++
	return client.ContainerStopResult{}, nil
}

func (f *FakeEngine) ContainerStart(ctx context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Running = true
	return client.ContainerStartResult{}, nil
}
