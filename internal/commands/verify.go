package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker-backup/docker-backup/internal/verify"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type verifyOptions struct {
	from          string
	service       string
	project       string
	format        string
	timeout       time.Duration
	noSidecar     bool
	allowUnsigned bool
	trust         []string
	decrypt       keys.Decrypt
	repoKey       string
}

func newVerifyCommand(dockerCli command.Cli) *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [OPTIONS] BACKUP",
		Short: "Prove that a backup restores: restore it into a scratch copy of its service and compare",
		Long: `Verify a backup by restoring it into a throwaway copy of its service — a container created
from the backed-up image (or the service's current one when that image is gone) with the service's
environment and command, empty volumes in place of its volumes and read-write bind mounts, and no
network — then comparing what the restored data holds with what the backup recorded while it
was made:

  postgres  rows of every table (each COPY block counted as the dump streamed) against count(*)
  mysql     rows of every table (the dump's INSERTed rows) against COUNT(*)
  redis     keys per database (read from the RDB) against INFO keyspace
  sqlite    rows of every table against count(*), and PRAGMA integrity_check
  volume    number of files, bytes and a digest of paths, modes, owners and contents
  mongo     documents of every collection (read from the archive) against countDocuments

BACKUP is a backup's name as "docker backup ls" shows it (with --from), the path of an artifact
or manifest file, or "latest" (the newest backup of --service). The service itself is never
touched: only read (its configuration), and the scratch container and its volumes are removed
on every path. One left behind by a killed verify is removed by the next.

The exit code is 0 when every check passed, 4 when the verify ran and a check failed (the
backup does not restore, or restores to something else than it recorded), 1 when it could not
run (no such backup, not trusted, the scratch copy did not start).

Without --from, in a project with a sidecar, the sidecar verifies the backup on its targets.`,
		Example: `  docker backup verify latest --service db                 # through the project's sidecar
  docker backup verify latest --from ./backups --service db -p myapp
  docker backup verify myapp/db/db-postgres-20261125T020000.000Z-1a2b3c4d.sql.zst --from s3://bucket/backups
  docker backup verify ./backups/myapp/files/files-volume-20261125T020000.000Z-5e6f7a8b.tar.zst --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory, "+targets.URLs()+" (default: $"+envTarget+")")
	flags.StringVar(&opts.service, "service", "", "Service whose backup it is (default: the one the manifest names; required with latest)")
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.format, "format", "table", `Output format: "table" or "json"`)
	flags.DurationVar(&opts.timeout, "timeout", time.Hour, "Give up after this long (the scratch copy is removed)")
	flags.BoolVar(&opts.allowUnsigned, "allow-unsigned", false, "Verify a backup whose manifest is not signed with this plugin's (or the sidecar's) key")
	keys.TrustFlag(flags, &opts.trust)
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	noSidecarFlag(flags, &opts.noSidecar)
	opts.decrypt.AddFlags(flags)
	return cmd
}

func runVerify(ctx context.Context, dockerCli command.Cli, backup string, opts verifyOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf(`--format %q: use "table" or "json"`, opts.format)
	}
	if backup == plan.Latest && opts.service == "" {
		return fmt.Errorf(`"latest" needs --service SERVICE to know whose newest backup to verify`)
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	spec := verify.Spec{Engine: api, Backup: backup, AllowUnsigned: opts.allowUnsigned, Owner: scratch.ProcessOwner(),
		Timeout: opts.timeout, Log: output.Logger(dockerCli.Err())}
	_, statErr := os.Stat(strings.TrimSuffix(backup, artifact.ManifestSuffix))
	switch {
	case opts.from != "":
		if spec.Target, err = targets.Open(opts.from); err != nil {
			return err
		}
		repoKeys := keys.Repository(opts.repoKey)
		spec.SnapshotKeys = &repoKeys
		switch {
		case snapshots.IsRef(backup): // its manifest names the service; the plan restores it
			membudget.SetRepository(0)
			_, s, err := keys.Snapshot(ctx, dockerCli, spec.Target, backup, repoKeys, opts.trust, opts.decrypt)
			if err != nil {
				return err
			}
			spec.Manifest = snapshots.Manifest(s)
		case backup != plan.Latest:
			if spec.Manifest, err = listing.ReadManifest(ctx, spec.Target, strings.TrimSuffix(backup, artifact.ManifestSuffix)); err != nil {
				return err
			}
		}
	case statErr == nil:
		if spec.Target, spec.Manifest, err = backupFromPath(ctx, backup); err != nil {
			return err
		}
	case opts.noSidecar:
		return fmt.Errorf("no backup file %s, and no --from to look for it in", backup)
	}
	if spec.Service, err = verifiedService(ctx, api, opts, backup, spec.Manifest); err != nil {
		return err
	}
	if spec.Target == nil {
		sc, err := sidecarclient.Find(ctx, api, spec.Service.Project)
		if err != nil {
			return err
		}
		if sc == nil {
			return fmt.Errorf("%s has no sidecar: pass --from DIR (or s3://...) to say where the backup is", spec.Service)
		}
		return verifySidecar(ctx, dockerCli, sc, spec.Service, backup, opts)
	}
	if spec.Keys, err = keys.Keyring(opts.trust); err != nil {
		return err
	}
	if spec.Worker, spec.RequireWorker, err = worker.ForPlugin(api, spec.Log); err != nil {
		return err
	}
	if spec.Identities, err = opts.decrypt.Identities(dockerCli); err != nil {
		return err
	}
	report, err := verify.Run(ctx, spec)
	if err != nil {
		return ended(outcome.Verify(err))
	}
	return printReport(dockerCli, report, opts.format)
}

// verifiedService finds the container of the service whose backup is verified: --service, or
// the one the manifest names.
func verifiedService(ctx context.Context, api containers.API, opts verifyOptions, key string, m *artifact.Manifest) (*containers.Container, error) {
	if opts.service != "" {
		return containers.ResolveHere(ctx, api, opts.project, opts.service)
	}
	if m == nil {
		// A key names its project and service: PROJECT/SERVICE/NAME.
		parts := strings.Split(key, "/")
		if len(parts) < 3 {
			return nil, fmt.Errorf("cannot tell whose backup %q is: name the service with --service", key)
		}
		m = &artifact.Manifest{Project: parts[len(parts)-3], Service: parts[len(parts)-2]}
	}
	project := m.Project
	if opts.project != "" {
		project = opts.project
	}
	c, err := containers.Find(ctx, api, project, m.Service)
	if err != nil {
		return nil, fmt.Errorf("verify copies the configuration of the backed-up service %s, and %w; name another with --service", m.Describe(), err)
	}
	return c, nil
}

// printReport writes the report, and returns the exit status of a verify that failed.
func printReport(dockerCli command.Cli, r *verify.Report, format string) error {
	if err := output.VerifyReport(dockerCli.Out(), dockerCli.Err(), r, format); err != nil {
		return err
	}
	if err := r.Failed(); err != nil {
		return ended(outcome.ExitVerifyFailed, err)
	}
	return nil
}

// verifySidecar has the project's sidecar verify the backup on its targets.
func verifySidecar(ctx context.Context, dockerCli command.Cli, sc *sidecarclient.Client, c *containers.Container, backup string, opts verifyOptions) error {
	if len(opts.trust) > 0 || opts.decrypt.Given() {
		return fmt.Errorf("--trust and the decryption flags apply to direct verifies (with --from); the sidecar %s trusts its own keys and decrypts with its own identity, DOCKER_BACKUP_AGE_IDENTITY_FILE (or pass --no-sidecar)", sc.Name())
	}
	m, tgt, err := sidecarBackup(ctx, sc, c, backup, opts.allowUnsigned, "verified")
	if err != nil {
		return err
	}
	res, err := sc.Stream(ctx, control.PathVerify, control.VerifyRequest{Project: c.Project, Service: c.Service, Key: m.Key, Target: tgt,
		AllowUnsigned: opts.allowUnsigned}, func(ev control.Event) { fmt.Fprintln(dockerCli.Err(), output.Event(ev)) })
	if err != nil {
		return ended(outcome.Verify(err))
	}
	if res.Verify == nil {
		return errors.New("the sidecar sent no verify report")
	}
	return printReport(dockerCli, wire.ToReport(res.Verify), opts.format)
}
