package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

type lsOptions struct {
	from    string
	project string
	service string
	format  string
}

func newLsCommand(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List the backups on a target, newest first",
		Example: `  docker backup ls --from ./backups
  docker backup ls --from ./backups --service db --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLs(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory or s3:// URL (default: $"+envTarget+")")
	flags.StringVarP(&opts.project, "project", "p", "", "Only backups of this compose project")
	flags.StringVar(&opts.service, "service", "", "Only backups of this service")
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	return cmd
}

func runLs(ctx context.Context, dockerCli command.Cli, opts lsOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	if opts.from == "" {
		return fmt.Errorf("no target given: pass --from DIR (or set $%s)", envTarget)
	}
	if _, err := os.Stat(opts.from); err != nil && !strings.Contains(opts.from, "://") {
		return fmt.Errorf("backup directory %s: %w", opts.from, err)
	}
	tgt, err := target.Open(opts.from)
	if err != nil {
		return err
	}
	listing, err := engine.List(ctx, tgt, "")
	if err != nil {
		return err
	}
	var backups []*artifact.Manifest
	for _, m := range listing.Backups {
		if (opts.project == "" || m.Project == opts.project) && (opts.service == "" || m.Service == opts.service) {
			backups = append(backups, m)
		}
	}
	for _, p := range listing.Problems {
		fmt.Fprintf(dockerCli.Err(), "warning: %s\n", p)
	}
	if opts.format == "json" {
		if backups == nil {
			backups = []*artifact.Manifest{}
		}
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(backups)
	}
	w := tabwriter.NewWriter(dockerCli.Out(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BACKUP\tSERVICE\tSTRATEGY\tCREATED\tSIZE")
	now := time.Now()
	for _, m := range backups {
		svc := m.Service
		if m.Project != "" {
			svc = m.Project + "/" + m.Service
		}
		if svc == "" {
			svc = m.Container
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%s\n", m.Artifact, svc, m.Strategy,
			units.HumanDuration(now.Sub(m.CreatedAt)), humanBytes(m.Size))
	}
	return w.Flush()
}
