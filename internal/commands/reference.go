package commands

import (
	"os"

	"github.com/docker-backup/docker-backup/internal/commands/reference"
	"github.com/docker/cli/cli/command"
)

// WriteReference writes the CLI reference, one Markdown file per command, into dir (make
// docs; a test fails when docs/cli is stale). Defaults read from the environment are cleared
// first, so that the reference does not depend on who generates it.
func WriteReference(dir string) error {
	for _, k := range []string{envTarget, "COMPOSE_PROJECT_NAME"} {
		os.Unsetenv(k)
	}
	var cli command.Cli // the commands use it only when they run
	root := NewRootCommand(cli)
	return reference.Write(root, dir)
}
