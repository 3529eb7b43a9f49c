// Package commands implements the `docker backup` CLI plugin's commands, one file each,
// in the docker CLI's style: an options struct, newXCommand and runX. The work itself is
// internal/plan's, shared with the sidecar.
package commands

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker-backup/docker-backup/internal/commands/targetcmd"
	"github.com/docker-backup/docker-backup/internal/watchdog"
	"github.com/docker/cli/cli-plugins/plugin"
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
dump tools inside the container, volumes in place or by a worker container beside the data. Every backup is a
compressed, checksummed artifact with a signed JSON manifest beside it; a directory of them
is all that listing and restoring need.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if plugin.PersistentPreRunE != nil {
				if err := plugin.PersistentPreRunE(cmd, args); err != nil {
					return err
				}
			}
			if cmd.Name() != watchdog.Command {
				watchdog.ReportFailures(dockerCli.Err())
			}
			cmd.SetContext(interruptible(cmd.Context(), dockerCli))
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newDetectCommand(dockerCli),
		newRunCommand(dockerCli),
		newLsCommand(dockerCli),
		newRestoreCommand(dockerCli),
		newVerifyCommand(dockerCli),
		newKeyCommand(dockerCli),
		newStatusCommand(dockerCli),
		newWatchdogCommand(dockerCli),
		newVersionCommand(dockerCli),
	)
	cmd.AddCommand(targetcmd.Commands(dockerCli, envTarget)...)
	return cmd
}

// interruptible cancels the command's context on the first SIGINT or SIGTERM, so that a
// backup or restore stops cleanly (stopped containers are started again, an unfinished
// restore is rolled back where the engine can); a second signal ends the process at once
// (the watchdog then starts what it had stopped).
func interruptible(ctx context.Context, dockerCli command.Cli) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(dockerCli.Err(), "Interrupted: stopping cleanly (stopped containers are started again); interrupt again to quit at once")
		cancel()
		<-sigs
		os.Exit(130)
	}()
	return ctx
}

// newWatchdogCommand is the hidden command of the watchdog the plugin starts before it stops a
// container (package watchdog).
func newWatchdogCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:    watchdog.Command,
		Short:  "Watchdog: starts containers the plugin stopped if it dies before it can (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return watchdog.Serve(dockerCli.Client(), os.Stdin)
		},
	}
}
