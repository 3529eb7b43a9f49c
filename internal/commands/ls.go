package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

type lsOptions struct {
	from      string
	project   string
	service   string
	format    string
	noSidecar bool
}

func newLsCommand(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List the backups on a target, newest first",
		Long: `List the backups on a target, newest first, from the manifests stored beside them (no
catalog needed). Without --from, in a project with a sidecar, the sidecar lists its targets.`,
		Example: `  docker backup ls                      # the sidecar's targets
  docker backup ls --from ./backups
  docker backup ls --from s3://backups/site-a?endpoint=minio:9000 --service db --format json`,
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
	noSidecarFlag(flags, &opts.noSidecar)
	return cmd
}

func runLs(ctx context.Context, dockerCli command.Cli, opts lsOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	if opts.from == "" && !opts.noSidecar {
		if done, err := lsSidecar(ctx, dockerCli, opts); done || err != nil {
			return err
		}
	}
	if opts.from == "" {
		return fmt.Errorf("no target given: pass --from DIR or s3:// URL (or set $%s), or run a sidecar in the project", envTarget)
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
	return printBackups(dockerCli, backups, nil, opts.format)
}

// lsSidecar lists through the project's sidecar; done is false when there is no sidecar.
func lsSidecar(ctx context.Context, dockerCli command.Cli, opts lsOptions) (done bool, err error) {
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return true, err
	}
	project := opts.project
	if project == "" {
		project = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	sc, err := findSidecar(ctx, api, project)
	if err != nil || sc == nil {
		return err != nil, err
	}
	q := url.Values{}
	if opts.project != "" {
		q.Set("project", opts.project)
	}
	if opts.service != "" {
		q.Set("service", opts.service)
	}
	var lists []control.Backups
	if err := sc.get(ctx, control.PathBackups, q, &lists); err != nil {
		return true, err
	}
	var backups []*artifact.Manifest
	targets := []string{}
	for _, l := range lists {
		for _, p := range l.Problems {
			fmt.Fprintf(dockerCli.Err(), "warning: target %s: %s\n", l.Target, p)
		}
		for _, m := range l.Backups {
			backups = append(backups, m)
			targets = append(targets, l.Target)
		}
	}
	if len(lists) > 1 {
		idx := make([]int, len(backups))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return backups[idx[a]].CreatedAt.After(backups[idx[b]].CreatedAt) })
		sb, st := make([]*artifact.Manifest, len(idx)), make([]string, len(idx))
		for i, k := range idx {
			sb[i], st[i] = backups[k], targets[k]
		}
		backups, targets = sb, st
	}
	return true, printBackups(dockerCli, backups, targets, opts.format)
}

// printBackups writes a listing; targets, when set, names each backup's sidecar target.
func printBackups(dockerCli command.Cli, backups []*artifact.Manifest, targets []string, format string) error {
	if format == "json" {
		if backups == nil {
			backups = []*artifact.Manifest{}
		}
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(backups)
	}
	w := tabwriter.NewWriter(dockerCli.Out(), 0, 4, 2, ' ', 0)
	header := "BACKUP\tSERVICE\tSTRATEGY\tCREATED\tSIZE"
	if targets != nil {
		header += "\tJOB\tTARGET"
	}
	fmt.Fprintln(w, header)
	now := time.Now()
	for i, m := range backups {
		svc := m.Service
		if m.Project != "" {
			svc = m.Project + "/" + m.Service
		}
		if svc == "" {
			svc = m.Container
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%s", m.Artifact, svc, m.Strategy,
			units.HumanDuration(now.Sub(m.CreatedAt)), humanBytes(m.Size))
		if targets != nil {
			job := m.Job
			if job == "" {
				job = "(manual)"
			}
			fmt.Fprintf(w, "\t%s\t%s", job, targets[i])
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
