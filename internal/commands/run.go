package commands

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/commands/nodecontext"
	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
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
	exclude     []string
	limitUpload string
	noSidecar   bool
	incremental bool
	repoKey     string
	encrypt     keys.Encrypt
	// compressionSet: --compression was given (it applies to direct backups only); limitSet:
	// --limit-upload was.
	compressionSet, limitSet bool
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

The manifest is signed with the plugin's key ($` + keys.EnvSigningKey + `, else one made in the docker
CLI's configuration directory on first use): restores check that they restore what this
key's holder made.`,
		Example: `  docker backup run db                     # the sidecar runs db's job now
  docker backup run files/weekly           # ... the job named weekly
  docker backup run db --project myapp --to ./backups
  docker backup run files --project myapp --strategy volume --paths /data --to /srv/backups
  docker backup run files --to ./backups --exclude '*.log' --exclude cache/   # leave out logs and caches
  docker backup run db --to ./backups --compression gzip
  docker backup run db --to ./backups --to s3://offsite/backups   # both at once
  docker backup run db --to s3://offsite/backups --limit-upload 10MiB/s   # for a home connection
  DOCKER_BACKUP_WORKER=off docker backup run files --to ./backups  # volumes through the archive API`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.compressionSet = cmd.Flags().Changed("compression")
			opts.limitSet = cmd.Flags().Changed("limit-upload")
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
	flags.StringArrayVar(&opts.to, "to", defaultTo, "Backup directory, "+targets.URLs()+" (default: $"+envTarget+"); repeat it to write to several at once")
	flags.StringVar(&opts.compression, "compression", string(artifact.Zstd), "Compression: zstd or gzip")
	flags.StringVar(&opts.limitUpload, "limit-upload", os.Getenv(envLimitUpload), "Cap the upload to each remote target (every kind but a directory), like 10MiB/s, 500KiB/s, 2MB/s or bytes a second; a directory target is written at full speed (default: $"+envLimitUpload+", else no cap)")
	flags.BoolVar(&opts.stop, "stop", false, "Stop the service (and the containers that depend on it) during the backup, and start them again after")
	flags.StringVar(&opts.user, "user", "", "Database user (default: from the container's environment; its password from $"+envPassword+")")
	flags.StringVar(&opts.database, "database", "", "postgres: database, or all (every database and the roles); mysql: databases, comma-separated (default: all); sqlite: the database file's path (required)")
	flags.StringSliceVar(&opts.paths, "paths", nil, "Volume strategy: absolute paths in the container (default: its volumes and bind mounts)")
	flags.StringArrayVar(&opts.exclude, "exclude", nil, "Volume strategy: leave out what this gitignore-style pattern matches below each path (*, ?, [a-z], **, a leading / anchors, a trailing / matches directories only, ! includes again); repeat it")
	flags.BoolVar(&opts.incremental, "incremental", false, "Store the backup as a snapshot in the target's repository ("+snapshots.Dir+"/): only what changed since the service's last snapshot is stored")
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	noSidecarFlag(flags, &opts.noSidecar)
	opts.encrypt.AddFlags(flags)
	return cmd
}

func runRun(ctx context.Context, dockerCli command.Cli, service string, opts runOptions) error {
	comp, err := artifact.ParseCompression(opts.compression)
	if err != nil {
		return err
	}
	if err := exclude.Check(opts.exclude); err != nil {
		return err
	}
	limit, err := bandwidth.ParseRate(opts.limitUpload)
	if err != nil {
		return fmt.Errorf("--limit-upload: %w", err)
	}
	if opts.strategy != "" {
		if _, err := strategies.New(opts.strategy, strategy.Options{Exclude: opts.exclude}); err != nil {
			return err
		}
	}
	if opts.incremental && (opts.compressionSet || opts.limitSet) {
		return fmt.Errorf("--compression and --limit-upload apply to full backups: an incremental backup's repository compresses each new chunk itself")
	}
	if len(opts.to) == 0 && !opts.noSidecar {
		if done, err := runSidecar(ctx, dockerCli, service, opts); done || err != nil {
			return err
		}
	}
	if len(opts.to) == 0 {
		opts.to = []string{""} // targets.Open says what is missing
	}
	dests, err := openDestinations(opts.to, limit)
	if err != nil {
		return err
	}
	if opts.incremental {
		membudget.SetRepository(target.BufferSize(dests[0].Target))
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	c, err := nodecontext.Resolve(ctx, dockerCli, api, opts.project, service)
	if err != nil {
		return err
	}
	key, err := keys.Signer(dockerCli.Err())
	if err != nil {
		return err
	}
	recipients, err := opts.encrypt.Recipients(dockerCli)
	if err != nil {
		return err
	}
	var incr *plan.Incremental
	if opts.incremental {
		trust, err := keys.Keyring(nil)
		if err != nil {
			return err
		}
		incr = &plan.Incremental{Keys: keys.Repository(opts.repoKey), Trust: trust}
	}
	guard := &watchdog.Guard{}
	defer guard.Close()
	log := output.Logger(dockerCli.Err())
	onProgress, done := output.Progress(dockerCli.Err(), "backing up")
	defer done()
	wk, requireWorker, err := worker.ForPlugin(api, log)
	if err != nil {
		return err
	}
	p, err := plan.NewBackup(ctx, api, plan.BackupSpec{Container: c, Strategy: opts.strategy,
		Options: strategy.Options{User: opts.user, Password: os.Getenv(envPassword), Database: opts.database, Paths: opts.paths, Exclude: opts.exclude,
			Worker: wk, RequireWorker: requireWorker},
		Targets: dests, Compression: comp, Stop: opts.stop, Signer: key, Encrypt: recipients, Guard: guard, Progress: onProgress, Log: log,
		Incremental: incr})
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
	output.Backup(dockerCli.Out(), backedUp(c.String(), key.ID(), res, dests))
	if err != nil {
		return fmt.Errorf("the backup %s is stored, but: %w", res.Key, err)
	}
	return nil
}

// openDestinations opens the --to targets, each capped at limit, and sets the heap's limit
// with room for what they buffer (an S3 upload's part).
func openDestinations(specs []string, limit bandwidth.Rate) ([]pipeline.Destination, error) {
	var dests []pipeline.Destination
	var buffered int64
	for _, to := range specs {
		tgt, err := targets.Open(to)
		if err != nil {
			return nil, err
		}
		for _, d := range dests {
			if d.Name == tgt.String() {
				return nil, fmt.Errorf("--to %s is given twice", to)
			}
		}
		dests = append(dests, pipeline.Destination{Name: tgt.String(), Target: tgt, LimitUpload: limit})
		buffered += target.BufferSize(tgt)
	}
	membudget.Set(buffered)
	return dests, nil
}

// backedUp is what the plugin prints of a direct backup of service, signed by keyID.
func backedUp(service, keyID string, res *pipeline.BackupResult, targets []pipeline.Destination) output.BackedUp {
	m := res.Manifest
	made := output.BackedUp{Service: service, Strategy: m.Strategy, Duration: res.Duration, Key: res.Key,
		Size: m.Size, RawSize: m.RawSize, SHA256: m.SHA256, KeyID: keyID}
	for _, d := range targets {
		stored := output.Stored{Target: d.Name}
		if ferr, failed := res.Failed[d.Name]; failed {
			stored.Failed = ferr.Error()
		}
		made.Targets = append(made.Targets, stored)
	}
	if dp := m.Source[volume.SourceDataPath]; dp != "" {
		made.Via = volume.DataPathText(dp)
	}
	made.Excluded = volume.Excluded(m.Source)
	if s := res.Snapshot; s != nil {
		made.Snapshot, made.Files, made.Reused = snapshots.Name(s.ID), s.Totals.Files, s.Totals.ReusedFiles
		if s.Parent != "" {
			made.Parent = snapshots.Name(s.Parent)
		}
	}
	if m.Encryption != nil {
		made.Recipients = m.Encryption.Recipients
	}
	return made
}

// runSidecar asks the project's sidecar to run the job; done is false when there is no sidecar.
func runSidecar(ctx context.Context, dockerCli command.Cli, arg string, opts runOptions) (done bool, err error) {
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return true, err
	}
	service, job, _ := strings.Cut(arg, "/")
	sc, err := sidecarclient.OfService(ctx, api, opts.project, service)
	if err != nil || sc == nil {
		return err != nil, err
	}
	if opts.strategy != "" || opts.database != "" || opts.user != "" || len(opts.paths) > 0 || len(opts.exclude) > 0 || opts.stop || opts.compressionSet || opts.limitSet || opts.encrypt.Given() {
		return true, fmt.Errorf("--strategy, --database, --user, --paths, --exclude, --stop, --compression, --limit-upload and the encryption flags apply to direct backups (with --to); the sidecar %s runs jobs as the service's labels and settings say (or pass --no-sidecar)", sc.Name())
	}
	if c, err := containers.Find(ctx, api, sc.Project(), service); err == nil {
		service = c.Service // a global Swarm service's task here: SERVICE@NODE
	}
	res, err := sc.Stream(ctx, control.PathRun, control.RunRequest{Project: sc.Project(), Service: service, Job: job, Incremental: opts.incremental}, func(ev control.Event) {
		fmt.Fprintln(dockerCli.Err(), output.Event(ev))
	})
	if res == nil {
		if err == nil {
			err = fmt.Errorf("the sidecar returned no result")
		}
		return true, ended(outcome.Backup(err))
	}
	m := res.Backup
	made := output.BackedUp{Service: artifact.ServiceName(m.Project, m.Service, m.Container), Strategy: m.Strategy, Duration: res.Duration,
		Sidecar: sc.Name(), Key: res.Key, Size: m.Size, RawSize: m.RawSize, SHA256: m.SHA256, KeyID: m.KeyID, Pruned: res.Pruned}
	if id, ok := snapshots.ParseRef(res.Key); ok {
		made.Snapshot = snapshots.Name(id)
	}
	for _, t := range strings.Split(res.Target, ",") {
		made.Targets = append(made.Targets, output.Stored{Target: t})
	}
	output.Backup(dockerCli.Out(), made)
	if err != nil {
		return true, fmt.Errorf("the backup is stored, but: %w", err)
	}
	return true, nil
}
