package commands

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/watchdog"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type runOptions struct {
	project     string
	strategy    string
	to          []string
	compression string
	stop        bool
	user        string
	database    string
	paths       []string
	noSidecar   bool
	encrypt     encryptOptions
	// compressionSet: --compression was given (it applies to direct backups only).
	compressionSet bool
}

func newRunCommand(dockerCli command.Cli) *cobra.Command {
	var opts runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE[/JOB]",
		Short: "Back up one service now",
		Long: `Back up one service now. SERVICE is a compose service (of --project) or a container name or ID.
The strategy is detected (see "docker backup detect") unless --strategy is given.

Without --to, in a project with a sidecar, the sidecar runs the service's job now (JOB names
one when the service has several), with its labels' strategy, target, hooks and retention,
and records the run in its catalog.

Several --to write the same backup to every target at once (one dump, one compression): a
target that fails does not lose the backup on the others, and the command says which failed
(exit status 1).

Volumes are read in place when the engine runs on this host and they are plain local
volumes this plugin can read (as root): no container, nothing crosses the Engine's API, no link
in them is followed. Otherwise a short-lived worker container beside the data archives them
(this plugin's own binary, imported once as the image docker-backup-worker:HASH), and when no
worker can run, the Engine's archive API does. Restores always go through a worker (or the
archive API). $` + worker.EnvMode + ` chooses: auto (default), on (a worker container or an
error), off (the archive API).

The manifest is signed with the plugin's key ($` + envSigningKey + `, else one made in the docker
CLI's configuration directory on first use): restores check that they restore what this
key's holder made.`,
		Example: `  docker backup run db                     # the sidecar runs db's job now
  docker backup run files/weekly           # ... the job named weekly
  docker backup run db --project myapp --to ./backups
  docker backup run files --project myapp --strategy volume --paths /data --to /srv/backups
  docker backup run db --to ./backups --compression gzip
  docker backup run db --to ./backups --to s3://offsite/backups   # both at once
  DOCKER_BACKUP_WORKER=off docker backup run files --to ./backups  # volumes through the archive API`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.compressionSet = cmd.Flags().Changed("compression")
			return runRun(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.strategy, "strategy", "", "Strategy: "+strategyNames+" (default: detected)")
	var defaultTo []string
	if v := os.Getenv(envTarget); v != "" {
		defaultTo = []string{v}
	}
	flags.StringArrayVar(&opts.to, "to", defaultTo, "Backup directory or s3:// URL (default: $"+envTarget+"); repeat it to write to several at once")
	flags.StringVar(&opts.compression, "compression", string(artifact.Zstd), "Compression: zstd or gzip")
	flags.BoolVar(&opts.stop, "stop", false, "Stop the service (and the containers that depend on it) during the backup, and start them again after")
	flags.StringVar(&opts.user, "user", "", "Database user (default: from the container's environment; its password from $"+envPassword+")")
	flags.StringVar(&opts.database, "database", "", "postgres: database, or all (every database and the roles); mysql: databases, comma-separated (default: all); sqlite: the database file's path (required)")
	flags.StringSliceVar(&opts.paths, "paths", nil, "Volume strategy: absolute paths in the container (default: its volumes and bind mounts)")
	noSidecarFlag(flags, &opts.noSidecar)
	encryptFlags(flags, &opts.encrypt)
	return cmd
}

func runRun(ctx context.Context, dockerCli command.Cli, service string, opts runOptions) error {
	comp, err := artifact.ParseCompression(opts.compression)
	if err != nil {
		return err
	}
	if opts.strategy != "" {
		if _, err := strategies.New(opts.strategy, strategy.Options{}); err != nil {
			return err
		}
	}
	if len(opts.to) == 0 && !opts.noSidecar {
		if done, err := runSidecar(ctx, dockerCli, service, opts); done || err != nil {
			return err
		}
	}
	if len(opts.to) == 0 {
		opts.to = []string{""} // target.Open says what is missing
	}
	var targets []pipeline.Destination
	for _, to := range opts.to {
		tgt, err := target.Open(to)
		if err != nil {
			return err
		}
		for _, d := range targets {
			if d.Name == tgt.String() {
				return fmt.Errorf("--to %s is given twice", to)
			}
		}
		targets = append(targets, pipeline.Destination{Name: tgt.String(), Target: tgt})
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	c, err := findService(ctx, api, opts.project, service)
	if err != nil {
		return err
	}
	key, err := signer(dockerCli.Err())
	if err != nil {
		return err
	}
	recipients, err := opts.encrypt.build(dockerCli)
	if err != nil {
		return err
	}
	guard := &watchdog.Guard{}
	defer guard.Close()
	log := logger(dockerCli.Err())
	onProgress, done := progress(dockerCli, "backing up")
	defer done()
	wk, requireWorker, err := volumeWorker(api, log)
	if err != nil {
		return err
	}
	p, err := plan.NewBackup(ctx, api, plan.BackupSpec{Container: c, Strategy: opts.strategy,
		Options: strategy.Options{User: opts.user, Password: os.Getenv(envPassword), Database: opts.database, Paths: opts.paths,
			Worker: wk, RequireWorker: requireWorker},
		Targets: targets, Compression: comp, Stop: opts.stop, Signer: key, Encrypt: recipients, Guard: guard, Progress: onProgress, Log: log})
	if err != nil {
		return err
	}
	if p.Detected != "" {
		fmt.Fprintf(dockerCli.Err(), "Using the %s strategy (%s)\n", p.Strategy.Name(), p.Detected)
	}
	res, err := p.Run(ctx)
	done()
	if err != nil && res == nil {
		return ended(outcome.Backup(err))
	}
	m := res.Manifest
	out := dockerCli.Out()
	fmt.Fprintf(out, "Backed up %s with the %s strategy in %s\n", c, m.Strategy, res.Duration.Round(1e7))
	fmt.Fprintf(out, "  backup   %s\n", res.Key)
	for _, d := range targets {
		if ferr, failed := res.Failed[d.Name]; failed {
			fmt.Fprintf(out, "  target   %s: FAILED, nothing stored there: %v\n", d.Name, ferr)
		} else {
			fmt.Fprintf(out, "  target   %s\n", d.Name)
		}
	}
	fmt.Fprintf(out, "  size     %s stored, %s of data (%.1fx)\n", humanBytes(m.Size), humanBytes(m.RawSize), float64(m.RawSize)/float64(max(m.Size, 1)))
	fmt.Fprintf(out, "  rate     %s\n", rate(m.RawSize, res.Duration))
	if dp := m.Source[volume.SourceDataPath]; dp != "" {
		fmt.Fprintf(out, "  via      %s\n", volume.DataPathText(dp))
	}
	fmt.Fprintf(out, "  sha256   %s\n", m.SHA256)
	fmt.Fprintf(out, "  signed   key %s\n", key.ID())
	if m.Encryption != nil {
		fmt.Fprintf(out, "  encrypted for %s\n", strings.Join(m.Encryption.Recipients, ", "))
	}
	if err != nil {
		return fmt.Errorf("the backup %s is stored, but: %w", res.Key, err)
	}
	return nil
}

// runSidecar asks the project's sidecar to run the job; done is false when there is no sidecar.
func runSidecar(ctx context.Context, dockerCli command.Cli, arg string, opts runOptions) (done bool, err error) {
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return true, err
	}
	service, job, _ := strings.Cut(arg, "/")
	sc, err := sidecarOfService(ctx, api, opts.project, service)
	if err != nil || sc == nil {
		return err != nil, err
	}
	e := opts.encrypt
	if opts.strategy != "" || opts.database != "" || opts.user != "" || len(opts.paths) > 0 || opts.stop || opts.compressionSet ||
		len(e.recipients)+len(e.recipientsFiles) > 0 || e.passphraseFile != "" || e.askPassphrase {
		return true, fmt.Errorf("--strategy, --database, --user, --paths, --stop, --compression and the encryption flags apply to direct backups (with --to); the sidecar %s runs jobs as the service's labels and settings say (or pass --no-sidecar)", sc.Name())
	}
	res, err := sc.Stream(ctx, control.PathRun, control.RunRequest{Project: sc.Project(), Service: service, Job: job}, func(ev control.Event) {
		fmt.Fprintln(dockerCli.Err(), eventLine(ev))
	})
	if res == nil {
		if err == nil {
			err = fmt.Errorf("the sidecar returned no result")
		}
		return true, ended(outcome.Backup(err))
	}
	out := dockerCli.Out()
	m := res.Backup
	fmt.Fprintf(out, "Backed up %s/%s with the %s strategy in %s (by sidecar %s)\n", m.Project, m.Service, m.Strategy, res.Duration.Round(1e7), sc.Name())
	fmt.Fprintf(out, "  backup   %s\n", res.Key)
	fmt.Fprintf(out, "  target   %s\n", res.Target)
	fmt.Fprintf(out, "  size     %s stored, %s of data\n", humanBytes(m.Size), humanBytes(m.RawSize))
	fmt.Fprintf(out, "  sha256   %s\n", m.SHA256)
	for _, k := range res.Pruned {
		fmt.Fprintf(out, "  pruned   %s\n", k)
	}
	if err != nil {
		return true, fmt.Errorf("the backup is stored, but: %w", err)
	}
	return true, nil
}
