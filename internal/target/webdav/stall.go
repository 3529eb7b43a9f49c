package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// stallTimeout cuts a transfer that makes no progress for this long: a server that stops
// taking an upload's bytes, or stops sending a download's.
const stallTimeout = 2 * time.Minute

// errStalled is the cause of a request cut by a stall guard.
var errStalled = errors.New("the transfer made no progress")

// stallGuard cancels a request's context once its transfer is stuck for stallTimeout: the
// time it measures is the network's (spent outside Read for an upload's body, which the HTTP
// client reads as it sends; inside Read for a download's), never the backup's own.
type stallGuard struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	after   time.Duration
}

// newStallGuard returns ctx for the request, the guard, and the function that releases them.
func newStallGuard(ctx context.Context, after time.Duration) (context.Context, *stallGuard, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &stallGuard{after: after}
	g.timer = time.AfterFunc(after, func() { cancel(fmt.Errorf("%w for %s", errStalled, after)) })
	g.timer.Stop()
	return ctx, g, func() {
		g.mu.Lock()
		g.stopped = true
		g.timer.Stop()
		g.mu.Unlock()
		cancel(context.Canceled)
	}
}

// arm starts the clock; pause stops it.
func (g *stallGuard) arm()   { g.set(true) }
func (g *stallGuard) pause() { g.set(false) }

func (g *stallGuard) set(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if on {
		g.timer.Reset(g.after)
	} else {
		g.timer.Stop()
	}
}

// uploadBody is an upload's body: the clock runs while the HTTP client is not reading it.
type uploadBody struct {
	r io.Reader
	g *stallGuard
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.g.pause()
	defer b.g.arm()
	return b.r.Read(p)
}

// downloadBody is a download's body: the clock runs while a Read waits for the server.
type downloadBody struct {
	ctx     context.Context // the request's, to tell a stall
	body    io.ReadCloser
	g       *stallGuard
	release func()
}

func (b *downloadBody) Read(p []byte) (int, error) {
	b.g.arm()
	defer b.g.pause()
	return b.body.Read(p)
}

func (b *downloadBody) Close() error {
	err := b.body.Close()
	b.release()
	return err
}

// stalled says the error of a request cut by its guard, or err.
func stalled(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return fmt.Errorf("network: %w (the server stopped answering): %v", cause, err)
	}
	return err
}
