// Package workerimage finds (or makes) the image a worker container runs: the plugin's own
// static binary imported as an image, the release's sidecar image, or the sidecar's own
// container image — each with the program and argument that start the worker.
package workerimage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/moby/moby/client"
)

// Command is the argument that makes the plugin's and the sidecar's binaries run the worker
// (agent.Serve).
const Command = "__worker"

// LabelWorker marks a worker container (beside the scratch labels that get it reaped); its
// value is the operation.
const LabelWorker = "org.docker-backup.worker"

// Image is an image on the engine that holds this tool's binary, and how to run the worker
// in it.
type Image struct {
	Ref        string
	Entrypoint []string
	// Volumes are the image's declared volumes (the sidecar's state directory): each is
	// covered with an empty read-only tmpfs in a worker, so that the engine makes no volume
	// of it.
	Volumes []string
}

// ContainerImage returns the Runner.Image of a process that runs in a container of this
// tool's image (the sidecar): that image, with the container's own executable.
func ContainerImage(engine interface {
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}, containerID string, log *slog.Logger) func(ctx context.Context) (Image, error) {
	return func(ctx context.Context) (Image, error) {
		if containerID == "" {
			return Image{}, fmt.Errorf("the sidecar's own container is unknown")
		}
		in, err := engine.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
		if err != nil {
			return Image{}, fmt.Errorf("inspecting the sidecar's container: %w", err)
		}
		c := in.Container
		if c.Image == "" || c.Path == "" {
			return Image{}, fmt.Errorf("the sidecar's container names no image or program")
		}
		if log != nil {
			log.Debug("worker image", "image", c.Image, "program", c.Path)
		}
		img := Image{Ref: c.Image, Entrypoint: []string{c.Path, Command}}
		if c.Config != nil {
			for v := range c.Config.Volumes {
				img.Volumes = append(img.Volumes, v)
			}
			slices.Sort(img.Volumes)
		}
		return img, nil
	}
}
