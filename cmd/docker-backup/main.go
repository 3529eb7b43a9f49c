// Command docker-backup is the `docker backup` CLI plugin. Install it in a docker CLI
// plugin directory (e.g. ~/.docker/cli-plugins/) and run `docker backup --help`.
package main

import (
	"github.com/docker-backup/docker-backup/internal/commands"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
)

func main() {
	plugin.Run(commands.NewRootCommand, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "docker-backup",
		Version:          version.Version,
		ShortDescription: "Back up and restore Docker Compose projects",
		URL:              "https://github.com/docker-backup/docker-backup",
	})
}
