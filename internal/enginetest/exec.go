package enginetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Exec is a command run in a container, as OnExec is asked to answer it.
type Exec struct {
	ID string
	// Container is the name of the container it runs in.
	Container string
	Cmd       []string
	Env       []string
	User      string
	// Stdin is what the command was given on its standard input, read to its end before it
	// answers (empty when the caller attached none).
	Stdin []byte
	// Result is what it answered (in Engine.Execs).
	Result ExecResult
}

// ExecResult is what a command answers: its output and exit code.
type ExecResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// execState is an exec from its creation to its end.
type execState struct {
	exec  Exec
	stdin bool
	done  bool
}

// ExecCreate creates an exec in a running container.
func (e *Engine) ExecCreate(_ context.Context, id string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	if err := e.call("ExecCreate", id); err != nil {
		return client.ExecCreateResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	switch {
	case c == nil:
		return client.ExecCreateResult{}, notFound("container", id)
	case !c.Running:
		return client.ExecCreateResult{}, fmt.Errorf("container %s is not running: %w", c.ID, cerrdefs.ErrConflict)
	}
	execID := fmt.Sprintf("exec-%d", len(e.execs)+1)
	e.execs[execID] = &execState{exec: Exec{ID: execID, Container: c.Name, Cmd: slices.Clone(o.Cmd), Env: slices.Clone(o.Env), User: o.User},
		stdin: o.AttachStdin}
	return client.ExecCreateResult{ID: execID}, nil
}

// ExecAttach starts the exec: the command reads its standard input to the end (when
// attached), OnExec answers it, and its output comes back as the Engine's multiplexed
// stream. Its exit code is known (ExecInspect) before the stream ends.
func (e *Engine) ExecAttach(_ context.Context, execID string, _ client.ExecAttachOptions) (client.ExecAttachResult, error) {
	if err := e.call("ExecAttach", execID); err != nil {
		return client.ExecAttachResult{}, err
	}
	e.mu.Lock()
	st := e.execs[execID]
	answer := e.OnExec
	e.mu.Unlock()
	if st == nil {
		return client.ExecAttachResult{}, notFound("exec instance", execID)
	}
	if answer == nil {
		answer = func(Exec) ExecResult { return ExecResult{} }
	}
	ours, theirs := net.Pipe()
	out, w := io.Pipe()
	go func() {
		defer theirs.Close()
		x := st.exec
		if st.stdin {
			x.Stdin, _ = io.ReadAll(theirs)
		}
		x.Result = answer(x)
		var stream bytes.Buffer
		frame(&stream, 1, x.Result.Stdout)
		frame(&stream, 2, x.Result.Stderr)
		e.mu.Lock()
		st.exec, st.done = x, true
		e.ran = append(e.ran, x)
		e.mu.Unlock()
		_, _ = w.Write(stream.Bytes())
		w.Close()
	}()
	conn := &hijacked{Conn: ours, closed: func() { out.CloseWithError(net.ErrClosed) }}
	return client.ExecAttachResult{HijackedResponse: client.HijackedResponse{Conn: conn, Reader: bufio.NewReader(out)}}, nil
}

// hijacked is the client's end of an exec's connection: its CloseWrite ends the command's
// input (as Docker's hijacked connections do), its Close also ends the output stream.
type hijacked struct {
	net.Conn
	once   sync.Once
	closed func()
}

func (h *hijacked) CloseWrite() error { return h.Conn.Close() }

func (h *hijacked) Close() error {
	h.once.Do(h.closed)
	return h.Conn.Close()
}

// frame writes one frame of Docker's multiplexed stream: the stream's number, three zero
// bytes, the payload's big-endian length, the payload.
func frame(w *bytes.Buffer, stream byte, payload string) {
	if payload == "" {
		return
	}
	hdr := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	w.Write(hdr)
	w.WriteString(payload)
}

// ExecInspect says whether an exec still runs, and its exit code once it ended.
func (e *Engine) ExecInspect(_ context.Context, execID string, _ client.ExecInspectOptions) (client.ExecInspectResult, error) {
	if err := e.call("ExecInspect", execID); err != nil {
		return client.ExecInspectResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.execs[execID]
	if st == nil {
		return client.ExecInspectResult{}, notFound("exec instance", execID)
	}
	return client.ExecInspectResult{ID: execID, Running: !st.done, ExitCode: st.exec.Result.ExitCode}, nil
}
