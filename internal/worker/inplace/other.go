//go:build !linux

package inplace

import (
	"context"
	"errors"
	"runtime"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/client"
)

// Engine is the part of the Engine API a Reader uses.
type Engine interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	VolumeInspect(ctx context.Context, volumeID string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
}

// Reader reads volumes in place only on Linux, the engine's own host; here its Open always
// says why not (a worker container of the sidecar's image does the work instead).
type Reader struct {
	Engine Engine
}

// Open returns why volumes are not read in this process.
func (l *Reader) Open(context.Context, *containers.Container, []string) (strategy.WorkerSession, error) {
	return nil, errors.New("volumes are read in place only by a plugin on the engine's Linux host, not on " + runtime.GOOS)
}
