package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type detectOptions struct {
	project string
	format  string
}

func newDetectCommand(dockerCli command.Cli) *cobra.Command {
	var opts detectOptions
	cmd := &cobra.Command{
		Use:   "detect [OPTIONS]",
		Short: "Show what each service of a compose project can be backed up with, and the labels to schedule it",
		Example: `  docker backup detect --project myapp
  docker backup detect --project myapp --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDetect(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	return cmd
}

type detectedService struct {
	Service    string             `json:"service"`
	Excluded   string             `json:"excluded,omitempty"`
	Container  string             `json:"container"`
	Image      string             `json:"image"`
	Running    bool               `json:"running"`
	Strategies []detect.Candidate `json:"strategies"`
	Labels     map[string]string  `json:"suggested_labels,omitempty"`
}

func runDetect(ctx context.Context, dockerCli command.Cli, opts detectOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	project := opts.project
	if project == "" {
		projects, err := containers.Projects(ctx, api)
		if err != nil {
			return err
		}
		switch len(projects) {
		case 0:
			return fmt.Errorf("no compose projects on this Docker host")
		case 1:
			project = projects[0]
		default:
			return fmt.Errorf("several compose projects on this Docker host (%s): choose one with --project", strings.Join(projects, ", "))
		}
	}
	svcs, err := containers.Services(ctx, api, project)
	if err != nil {
		return err
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
		}
		out = append(out, d)
	}
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printDetect(dockerCli.Out(), project, out)
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

func printDetect(w io.Writer, project string, svcs []detectedService) {
	fmt.Fprintf(w, "Project %s\n", project)
	for _, s := range svcs {
		state := "stopped"
		if s.Running {
			state = "running"
		}
		fmt.Fprintf(w, "\n%s  (container %s, image %s, %s)\n", s.Service, s.Container, s.Image, state)
		if s.Excluded != "" {
			fmt.Fprintf(w, "  not backed up: %s\n", s.Excluded)
			continue
		}
		if len(s.Strategies) == 0 {
			fmt.Fprintln(w, "  nothing to back up: no database recognised and no volumes")
			continue
		}
		for i, c := range s.Strategies {
			mark := " "
			if i == 0 {
				mark = "*"
			}
			fmt.Fprintf(w, "  %s %-9s %s\n", mark, c.Strategy, c.Reason)
		}
		fmt.Fprintf(w, "  labels to schedule it:\n")
		for _, k := range []string{labels.Enable, labels.Strategy, labels.Schedule} {
			fmt.Fprintf(w, "    %s: %q\n", k, s.Labels[k])
		}
		fmt.Fprintf(w, "  back up now:  docker backup run %s --project %s --to ./backups\n", s.Service, project)
	}
}
