// Package commands implements the `docker backup` CLI plugin's commands, one file each,
// in the docker CLI's style: an options struct, newXCommand and runX.
package commands

import (
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// NewRootCommand returns the `docker backup` command. Its Use must equal the plugin
// binary's suffix ("docker-backup").
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up and restore the data of Docker Compose projects",
		Long: `Back up and restore the data of Docker Compose projects: databases through their own
dump tools inside the container, volumes through the Engine's archive API. Every backup is a
compressed, checksummed artifact with a JSON manifest beside it; a directory of them is all
that listing and restoring need.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newDetectCommand(dockerCli),
		newRunCommand(dockerCli),
		newLsCommand(dockerCli),
		newRestoreCommand(dockerCli),
		newTargetCommand(dockerCli),
		newStatusCommand(dockerCli),
	)
	return cmd
}
