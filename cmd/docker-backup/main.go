// Command docker-backup is the `docker backup` CLI plugin. Install it in a docker CLI
// plugin directory (e.g. ~/.docker/cli-plugins/) and run `docker backup --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/docker-backup/docker-backup/internal/commands"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
)

// memoryLimit is a soft limit for the Go heap: the streams' buffers are bounded, and this keeps
// the garbage collector from letting the heap grow to twice that. GOMEMLIMIT overrides it. A
// volume backup read in place compresses in this process (the zstd frames in flight and the
// encoders' state, ≈ 17–25 MiB live) beside an S3 upload's part (16 MiB): at 40 MiB the
// collector ran about 850 times during one such backup of the bench volume (7.3–7.7 s); at 64
// MiB 11 times (6.3 s, 76 MiB peak RSS).
const memoryLimit = 64 << 20

func main() {
	if len(os.Args) > 1 && os.Args[1] == worker.Command {
		// In a worker container (see package worker): no plugin framework.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := agent.Serve(ctx, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	plugin.Run(commands.NewRootCommand, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "docker-backup",
		Version:          version.Version,
		ShortDescription: "Back up and restore Docker Compose projects",
		URL:              "https://github.com/docker-backup/docker-backup",
	})
}
