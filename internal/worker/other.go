//go:build !linux

package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/client"
)

// A worker runs in a Linux container, and only the plugin on the engine's own Linux host
// reads volumes in place: elsewhere (the plugin on macOS or Windows) Serve and Local say so,
// and a worker container of the sidecar's image does the work (see SidecarImage).

// Serve is the worker's main, which runs only on Linux.
func Serve(_ context.Context, _ io.Reader, _, reports io.Writer) int {
	fmt.Fprintf(reports, "the worker runs only on Linux, not %s\n", runtime.GOOS)
	return 2
}

// LocalEngine is the part of the Engine API Local uses.
type LocalEngine interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	VolumeInspect(ctx context.Context, volumeID string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
}

// Local reads volumes in place only on Linux; here its Open always says why not.
type Local struct {
	Engine LocalEngine
}

// Open returns why volumes are not read in this process.
func (l *Local) Open(context.Context, *containers.Container, []string) (strategy.WorkerSession, error) {
	return nil, errors.New("volumes are read in place only by a plugin on the engine's Linux host, not on " + runtime.GOOS)
}
