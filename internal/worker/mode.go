package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/moby/moby/client"
)

// EnvMode chooses the volume data path, for the plugin and the sidecar alike.
const EnvMode = "DOCKER_BACKUP_WORKER"

// Mode is how volume backups and restores use a worker container.
type Mode string

// The modes.
const (
	ModeAuto Mode = "auto" // backups in place on the engine's host (the plugin), else a worker when one can run, else the Engine's archive API (default)
	ModeOn   Mode = "on"   // a worker container, or fail
	ModeOff  Mode = "off"  // the archive API
)

// ParseMode reads EnvMode's value; empty is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeOn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("%s=%q: use auto (backups read in place on the engine's host when the plugin can, else a worker container when one can run, else the archive API), on (always a worker container) or off (always the archive API)", EnvMode, s)
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
