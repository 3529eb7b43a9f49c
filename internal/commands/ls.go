package commands

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type lsOptions struct {
	from      string
	project   string
	service   string
	format    string
	trust     []string
	noSidecar bool
	repoKey   string
	decrypt   keys.Decrypt
}

func newLsCommand(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List the backups on a target, newest first",
		Long: `List the backups on a target, newest first, from the manifests stored beside them (no
catalog needed). Without --from, in a project with a sidecar, the sidecar lists its targets.

Incremental backups (snapshots in the target's repository, named snapshot:ID) are listed
beside full ones: their SIZE is what they added to the repository.

The NOTE column flags an encrypted backup (its manifest names its recipients), and what a
restore would not trust: a backup dated in the future (never "latest", never counted by
retention), one whose manifest is not signed, or signed with another key than this plugin's
(or the sidecar's).`,
		Example: `  docker backup ls                      # the sidecar's targets
  docker backup ls --from ./backups
  docker backup ls --from s3://backups/site-a?endpoint=minio:9000 --service db --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLs(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory, "+targets.URLs()+" (default: $"+envTarget+")")
	flags.StringVarP(&opts.project, "project", "p", "", "Only backups of this compose project")
	flags.StringVar(&opts.service, "service", "", "Only backups of this service")
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	keys.TrustFlag(flags, &opts.trust)
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	opts.decrypt.AddFlags(flags)
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
		return fmt.Errorf("no target given: pass --from DIR, %s (or set $%s), or run a sidecar in the project", targets.URLs(), envTarget)
	}
	if _, err := os.Stat(opts.from); err != nil && !strings.Contains(opts.from, "://") && !targets.IsURL(opts.from) {
		return fmt.Errorf("backup directory %s: %w", opts.from, err)
	}
	tgt, err := targets.Open(opts.from)
	if err != nil {
		return err
	}
	trust, err := keys.Keyring(opts.trust)
	if err != nil {
		return err
	}
	ids, err := opts.decrypt.Identities(dockerCli)
	if err != nil {
		return err
	}
	// The whole target: backups listed from above the prefix they were written to (another
	// host's) have longer keys; the manifests say whose they are.
	found, err := listing.List(ctx, tgt, "", trust)
	if err != nil {
		return err
	}
	snaps, problems, err := snapshots.List(ctx, tgt, keys.Repository(opts.repoKey), repo.Access{Trust: trust, Identities: ids})
	if err != nil {
		return err
	}
	found.Problems = append(found.Problems, problems...)
	all := append(found.Backups, snaps...)
	sort.SliceStable(all, func(a, b int) bool { return selection.Newer(all[a], all[b]) })
	f := selection.Filter{Project: opts.project, Service: opts.service}
	var rows []output.Listed
	for _, s := range all {
		if v, _ := f.Match(s); v != selection.Other {
			rows = append(rows, output.Listed{Summary: s})
		}
	}
	for _, p := range found.Problems {
		output.Warning(dockerCli.Err(), "%s", p)
	}
	return output.Backups(dockerCli.Out(), rows, false, opts.format, now(dockerCli))
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
	sc, err := sidecarclient.Find(ctx, api, project)
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
	if len(opts.trust) > 0 {
		return true, fmt.Errorf("--trust applies to listings with --from; the sidecar %s trusts its own key and its %s (or pass --no-sidecar)", sc.Name(), artifact.EnvTrustedKeys)
	}
	var lists []control.Backups
	if err := sc.Get(ctx, control.PathBackups, q, &lists); err != nil {
		return true, err
	}
	var rows []output.Listed
	for _, l := range lists {
		for _, p := range l.Problems {
			output.Warning(dockerCli.Err(), "target %s: %s", l.Target, p)
		}
		for _, s := range l.Backups {
			rows = append(rows, output.Listed{Summary: wire.ToSummary(s), Target: l.Target})
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return selection.Newer(rows[a].Summary, rows[b].Summary) })
	return true, output.Backups(dockerCli.Out(), rows, true, opts.format, now(dockerCli))
}
