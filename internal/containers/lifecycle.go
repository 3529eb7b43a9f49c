package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/moby/moby/client"
)

// startTimeout bounds how long starting a container again may take, even after the
// caller's context was cancelled.
const startTimeout = 2 * time.Minute

// WhileStopped stops the container if it is running, calls fn, and starts the container
// again on every path: fn's error, a panic, or cancellation of ctx. A container that was
// not running is left as it was.
func (c *Container) WhileStopped(ctx context.Context, log *slog.Logger, fn func(context.Context) error) (err error) {
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	if !c.Running {
		return fn(ctx)
	}
	log.Info("stopping container", "container", c.Name)
	// nil timeout: the container's own stop timeout (compose's stop_grace_period) applies.
	if _, err := c.api.ContainerStop(ctx, c.ID, client.ContainerStopOptions{}); err != nil {
		return fmt.Errorf("stopping %s: %w", c, err)
	}
	defer func() {
		startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer cancel()
		log.Info("starting container again", "container", c.Name)
		if _, serr := c.api.ContainerStart(startCtx, c.ID, client.ContainerStartOptions{}); serr != nil {
			err = errors.Join(err, fmt.Errorf("starting %s again failed, start it by hand (docker start %s): %w", c, c.Name, serr))
		}
		c.Running = true
	}()
	return fn(ctx)
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
