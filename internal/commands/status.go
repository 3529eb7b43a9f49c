package commands

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type statusOptions struct {
	project string
	format  string
}

func newStatusCommand(dockerCli command.Cli) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show the sidecar's jobs: schedule, next run, last result, size and age",
		Long: `Show the jobs of a project's sidecar: each service's job, its schedule in words, the next
run, the last run's result, size and age, and any invalid labels. Needs the sidecar.`,
		Example: `  docker backup status
  docker backup status --project myapp --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	return cmd
}

func runStatus(ctx context.Context, dockerCli command.Cli, opts statusOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	sc, err := sidecarclient.Require(ctx, api, opts.project)
	if err != nil {
		return err
	}
	var st control.Status
	if err := sc.Get(ctx, control.PathStatus, nil, &st); err != nil {
		return err
	}
	out := dockerCli.Out()
	if opts.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return output.Status(out, sc.Name(), &st, now(dockerCli))
}
