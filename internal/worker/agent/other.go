//go:build !linux

package agent

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

// A worker runs in a Linux container: elsewhere (the plugin on macOS or Windows) Serve says so,
// and a worker container of the sidecar's image does the work (see worker.SidecarImage).

// Serve is the worker's main, which runs only on Linux.
func Serve(_ context.Context, _ io.Reader, _, reports io.Writer) int {
	fmt.Fprintf(reports, "the worker runs only on Linux, not %s\n", runtime.GOOS)
	return 2
}
