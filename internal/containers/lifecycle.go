package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// startTimeout bounds how long starting a container again may take, even after the
// caller's context was cancelled.
const startTimeout = 2 * time.Minute

// Guard is told about every container an operation stops, before it stops it, so that the
// container is started again even if the process dies first: the sidecar records it in its
// catalog (recovery starts it at the next start-up), the plugin in a watchdog process.
type Guard interface {
	// Stopping is called before the container is stopped; an error cancels the stop.
	Stopping(ctx context.Context, c *Container) error
	// Started is called once the container runs again.
	Started(ctx context.Context, c *Container)
}

// SetGuard makes every WhileStopped of c tell g.
func (c *Container) SetGuard(g Guard) { c.guard = g }

// WhileStopped stops the container if it is running, calls fn, and starts the container
// again on every path: fn's error, a panic, cancellation of ctx — also a cancellation
// during the stop itself, which dockerd finishes anyway (the restart is registered before
// the stop is asked for). A container that was not running is left as it was. A Swarm
// task's service is scaled to 0 and back instead (see whileScaledDown).
func (c *Container) WhileStopped(ctx context.Context, log *slog.Logger, fn func(context.Context) error) (err error) {
	if err := c.Refresh(ctx); err != nil && (c.Task == nil || !errors.Is(err, ErrNotFound)) {
		return err
	}
	if c.Task != nil {
		// (Its container may be gone, its task ended: the service is what is scaled.)
		return c.whileScaledDown(ctx, log, fn)
	}
	if !c.Running {
		return fn(ctx)
	}
	if c.guard != nil {
		if err := c.guard.Stopping(ctx, c); err != nil {
			return fmt.Errorf("recording that %s is stopped: %w", c, err)
		}
	}
	log.Info("stopping container", "container", c.Name)
	var stopErr error
	defer func() {
		startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer cancel()
		if stopErr != nil && !c.waitStopped(startCtx) {
			// The stop never happened: the container still runs.
			if c.guard != nil {
				c.guard.Started(startCtx, c)
			}
			return
		}
		log.Info("starting container again", "container", c.Name)
		if _, serr := c.api.ContainerStart(startCtx, c.ID, client.ContainerStartOptions{}); serr != nil {
			err = errors.Join(err, fmt.Errorf("starting %s again failed, start it by hand (docker start %s): %w", c, c.Name, serr))
			return
		}
		c.Running = true
		if c.guard != nil {
			c.guard.Started(startCtx, c)
		}
	}()
	// nil timeout: the container's own stop timeout (compose's stop_grace_period) applies.
	if _, stopErr = c.api.ContainerStop(ctx, c.ID, client.ContainerStopOptions{}); stopErr != nil {
		return fmt.Errorf("stopping %s: %w", c, stopErr)
	}
	c.Running = false
	return fn(ctx)
}

// waitStopped waits until a stop that may be in progress (asked for by a request that was
// then cancelled) has ended: it reports whether the container is stopped, giving up after
// the container's stop timeout and a margin.
func (c *Container) waitStopped(ctx context.Context) bool {
	deadline := time.Now().Add(c.StopTimeout + 15*time.Second)
	for {
		res, err := c.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err == nil && res.Container.State != nil && !res.Container.State.Running {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// CopyFrom streams a tar archive of path from the container, running or not.
func (c *Container) CopyFrom(ctx context.Context, path string) (io.ReadCloser, error) {
	res, err := c.api.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, fmt.Errorf("copying %s out of %s: %w", path, c, err)
	}
	return res.Content, nil
}

// CopyTo extracts the tar archive content at dir in the container, keeping the archive's
// ownership and modes, and replacing directories by files where the archive says so.
func (c *Container) CopyTo(ctx context.Context, dir string, content io.Reader) error {
	_, err := c.api.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{
		DestinationPath:           dir,
		Content:                   content,
		AllowOverwriteDirWithFile: true,
	})
	if err != nil {
		return fmt.Errorf("copying into %s of %s: %w", dir, c, err)
	}
	return nil
}

// PathKind is what a path in a container is.
type PathKind int

// Kinds of paths.
const (
	Missing PathKind = iota
	Directory
	Symlink
	Other
)

// Stat tells what the path is in the container (running or not), without following a
// symbolic link at its end.
func (c *Container) Stat(ctx context.Context, p string) (PathKind, error) {
	res, err := c.api.ContainerStatPath(ctx, c.ID, client.ContainerStatPathOptions{Path: p})
	switch {
	case cerrdefs.IsNotFound(err):
		return Missing, nil
	case err != nil:
		return Missing, fmt.Errorf("looking at %s in %s: %w", p, c, err)
	case res.Stat.LinkTarget != "":
		return Symlink, nil
	case res.Stat.Mode.IsDir():
		return Directory, nil
	}
	return Other, nil
}
