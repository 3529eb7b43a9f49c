package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ExecSpec describes a command to run inside a container.
type ExecSpec struct {
	Cmd  []string
	Env  []string // extra KEY=VALUE entries; how secrets reach the command without argv
	User string
	// Stdin, when set, is copied to the command's standard input, then closed.
	Stdin io.Reader
	// Stdout receives the command's standard output as it is produced; nil discards it.
	Stdout io.Writer
	// Stderr, when set, also receives the command's standard error as it is produced (the
	// tail is kept for the error either way).
	Stderr io.Writer
	// EndGrace, when set, ends a command still running when ctx ends (a hook past its
	// timeout): SIGTERM to it and to every process that inherited its environment, SIGKILL
	// after EndGrace. Without it the command goes on in the container after Exec returned.
	EndGrace time.Duration
}

// ExitError reports a command that ran and exited non-zero.
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string // the tail of its standard error
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s exited with code %d", e.Cmd, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// stderrTailSize bounds how much of a command's standard error is kept for its error.
const stderrTailSize = 2048

// Exec runs a command in the running container, streaming its stdout to spec.Stdout and
// keeping the tail of its stderr. It returns an *ExitError when the command exits non-zero,
// and the error of spec.Stdout when writing the output failed.
func (c *Container) Exec(ctx context.Context, spec ExecSpec) error {
	name := spec.Cmd[0]
	env, marker := spec.Env, ""
	if spec.EndGrace > 0 {
		marker = newExecMarker()
		env = append(append([]string(nil), env...), execMarkerEnv+"="+marker)
	}
	created, err := c.api.ExecCreate(ctx, c.ID, client.ExecCreateOptions{
		Cmd:          spec.Cmd,
		Env:          env,
		User:         spec.User,
		AttachStdin:  spec.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		if strings.Contains(err.Error(), "is not running") {
			return fmt.Errorf("cannot run %s in %s: the container is not running", name, c)
		}
		return fmt.Errorf("creating exec of %s in %s: %w", name, c, err)
	}
	// ExecAttach starts the command.
	att, err := c.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("starting %s in %s: %w", name, c, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()

	var wg sync.WaitGroup
	var stdinErr error
	if spec.Stdin != nil {
		wg.Go(func() {
			_, stdinErr = io.Copy(att.Conn, spec.Stdin)
			if cerr := att.CloseWrite(); stdinErr == nil {
				stdinErr = cerr
			}
		})
	}

	stdout := spec.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	out := &errWriter{w: stdout}
	tail := &tailBuffer{max: stderrTailSize}
	// With TTY off the stream is multiplexed, whatever media type API 1.41 announces.
	var errOut io.Writer = tail
	if spec.Stderr != nil {
		errOut = io.MultiWriter(tail, spec.Stderr)
	}
	_, copyErr := stdcopy.StdCopy(out, errOut, att.Reader)
	if copyErr != nil {
		att.Close() // unblocks the stdin copy and makes the command see a closed pipe
	}
	wg.Wait()

	if ctx.Err() != nil {
		cerr := &CancelledError{Cmd: name, Container: c.String(), Err: ctx.Err()}
		if marker != "" {
			cerr.Ended = c.endMarked(context.WithoutCancel(ctx), marker, spec.EndGrace)
		}
		return cerr
	}
	if out.err != nil {
		return out.err
	}
	code, err := c.waitExit(ctx, created.ID)
	if err != nil {
		return fmt.Errorf("waiting for %s in %s: %w", name, c, err)
	}
	if code != 0 {
		return &ExitError{Cmd: name, Code: code, Stderr: tail.String()}
	}
	if copyErr != nil {
		return fmt.Errorf("reading the output of %s in %s: %w", name, c, copyErr)
	}
	if stdinErr != nil && !errors.Is(stdinErr, io.ErrClosedPipe) {
		return fmt.Errorf("sending input to %s in %s: %w", name, c, stdinErr)
	}
	return nil
}

// Output runs a short command and returns its trimmed stdout.
func (c *Container) Output(ctx context.Context, cmd ...string) (string, error) {
	var b strings.Builder
	err := c.Exec(ctx, ExecSpec{Cmd: cmd, Stdout: &limitedBuilder{b: &b, max: 64 << 10}})
	return strings.TrimSpace(b.String()), err
}

func (c *Container) waitExit(ctx context.Context, execID string) (int, error) {
	delay := 5 * time.Millisecond
	for {
		res, err := c.api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// errWriter remembers the first error of w so that it can be told apart from stream errors.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	buf  []byte
	over bool // bytes were dropped: the first line may be cut
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.over = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := string(t.buf)
	if i := strings.IndexByte(s, '\n'); t.over && i >= 0 && i < len(s)-1 {
		s = s[i+1:] // drop the partial first line
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}

type limitedBuilder struct {
	b   *strings.Builder
	max int
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
