// Command docker-backup is the `docker backup` CLI plugin. Install it in a docker CLI
// plugin directory (e.g. ~/.docker/cli-plugins/) and run `docker backup --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker-backup/docker-backup/internal/commands"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == worker.Command {
		// In a worker container (see package worker): no plugin framework.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := agent.Serve(ctx, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// A soft limit for the Go heap, raised by a command whose targets hold buffers of their
	// own (package membudget).
	membudget.Set(0)
	plugin.Run(commands.NewRootCommand, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "docker-backup",
		Version:          version.Version,
		ShortDescription: "Back up and restore Docker Compose projects",
		URL:              "https://github.com/docker-backup/docker-backup",
	})
}
