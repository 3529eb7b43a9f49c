package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/commands/sizes"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type detectOptions struct {
	project string
	format  string
	exclude []string
	noSize  bool
}

func newDetectCommand(dockerCli command.Cli) *cobra.Command {
	var opts detectOptions
	cmd := &cobra.Command{
		Use:   "detect [OPTIONS]",
		Short: "Show what each service of a compose project can be backed up with, and the labels to schedule it",
		Long: "Show what each service of a compose project can be backed up with, and the labels to schedule it.\n\n" +
			"For each service backed up with the volume strategy it shows the size of its paths and, when it has exclusions " +
			"(the label docker-backup.exclude, and --exclude to try patterns before setting it), the size with them and what they leave out: " +
			"the worker walks the paths as a backup does, reading no file. With DOCKER_BACKUP_WORKER=off it shows the Engine's own size of each named volume instead.",
		Example: `  docker backup detect --project myapp
  docker backup detect --project myapp --format json
  docker backup detect --project myapp --exclude '*.log' --exclude cache/   # what these patterns would leave out
  docker backup detect --project myapp --no-size`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDetect(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	flags.StringArrayVar(&opts.exclude, "exclude", nil, "Volume strategy: measure too what this gitignore-style pattern would leave out below each path, beside the label docker-backup.exclude; repeat it")
	flags.BoolVar(&opts.noSize, "no-size", false, "Do not measure the volume strategy's paths")
	return cmd
}

type detectedService = output.DetectedService

func runDetect(ctx context.Context, dockerCli command.Cli, opts detectOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	if err := exclude.Check(opts.exclude); err != nil {
		return err
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	project := opts.project
	if project == "" {
		if project, err = containers.SoleProject(ctx, api); err != nil {
			return err
		}
	}
	svcs, err := containers.Services(ctx, api, project)
	if err != nil {
		return err
	}
	var measure *sizes.Measurer
	if !opts.noSize {
		if measure, err = sizes.ForPlugin(api, opts.exclude, output.Logger(dockerCli.Err())); err != nil {
			return err
		}
	}
	var out []detectedService
	for _, c := range svcs {
		d := detectedService{Service: c.Service, Container: c.Name, Image: c.Image, Running: c.Running,
			Excluded: labels.Excluded(c.Labels), Strategies: detect.All(ctx, c)}
		if len(d.Strategies) > 0 {
			d.Labels = map[string]string{
				labels.Enable:   "true",
				labels.Strategy: d.Strategies[0].Strategy,
				labels.Schedule: "0 2 * * *",
			}
			measure.Set(ctx, c, &d, dockerCli.Err())
		}
		out = append(out, d)
	}
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	output.Detect(dockerCli.Out(), project, out)
	fmt.Fprintf(dockerCli.Out(), "\nVolume worker: %s\n", describeWorker(ctx, api))
	return nil
}

// describeWorker says what volume backups and restores work beside the data with.
func describeWorker(ctx context.Context, api client.APIClient) string {
	mode, err := worker.ParseMode(os.Getenv(worker.EnvMode))
	if err != nil {
		return err.Error()
	}
	if mode == worker.ModeOff {
		return "off (" + worker.EnvMode + "=off): volumes go through the Engine's archive API"
	}
	rel, err := workerimage.ThisRelease()
	if err != nil {
		return err.Error()
	}
	return workerimage.DescribePluginImage(ctx, api, rel)
}
