package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/commands/nodecontext"
	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/control/wire"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker-backup/docker-backup/internal/watchdog"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type restoreOptions struct {
	from          string
	to            string
	project       string
	yes           bool
	noStop        bool
	user          string
	database      string
	noSidecar     bool
	allowUnsigned bool
	trust         []string
	decrypt       keys.Decrypt
	paths         []string
	repoKey       string
}

func newRestoreCommand(dockerCli command.Cli) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] BACKUP",
		Short: "Restore a backup into a service, after verifying its signature and checksum",
		Long: `Restore a backup into a service. BACKUP is a backup's name as "docker backup ls" shows it
(with --from), "latest" (the newest backup of the --to service, with --from), or the path of an
artifact or manifest file.

Before anything in the container is touched, the manifest's signature is checked (only backups
made with this plugin's or the sidecar's key are restored, unless --allow-unsigned), and the
whole artifact is read and checked against the SHA-256 in its manifest and for what it would
write (only inside the container's volumes and bind mounts). PostgreSQL restores are one
transaction, committed only once the whole artifact matched; SQLite and Redis files are
swapped in only when complete. MySQL, MongoDB and volume restores cannot be undone part-way:
an interrupted one exits with code 3 and says what it left.

The volume strategy stops a running container during the restore and starts it again after.

Without --from, in a project with a sidecar, BACKUP is looked up on the sidecar's targets
("latest" included) and the sidecar restores it; no backup job of the service runs meanwhile.`,
		Example: `  docker backup restore latest --to db --yes          # through the project's sidecar
  docker backup restore myapp/db/db-postgres-20261125T020000.000Z-1a2b3c4d.sql.zst --from ./backups --to db
  docker backup restore latest --from ./backups --to db --project myapp --yes
  docker backup restore ./backups/myapp/files/files-volume-20261125T020000.000Z-5e6f7a8b.tar.zst --to files`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory, "+targets.URLs()+" (default: $"+envTarget+")")
	flags.StringVar(&opts.to, "to", "", "Service (or container name or ID) to restore into (required)")
	projectFlag(flags, &opts.project)
	flags.BoolVarP(&opts.yes, "yes", "y", false, "Do not ask for confirmation")
	flags.BoolVarP(&opts.yes, "force", "f", false, "Same as --yes")
	flags.BoolVar(&opts.noStop, "no-stop", false, "Volume strategy: restore into the running container without stopping it")
	flags.StringVar(&opts.user, "user", "", "Database user (default: from the container's environment; its password from $"+envPassword+")")
	flags.StringVar(&opts.database, "database", "", "postgres: database (default: from the container's environment; of a cluster backup: only this one of its databases); sqlite: the database file (default: the backed-up path)")
	flags.BoolVar(&opts.allowUnsigned, "allow-unsigned", false, "Restore a backup whose manifest no trusted key signed (this plugin's, the sidecar's or --trust's); it is then restored without set-user-ID files, devices or file capabilities")
	keys.TrustFlag(flags, &opts.trust)
	flags.StringSliceVar(&opts.paths, "paths", nil, "Of an incremental volume backup (snapshot:ID): restore only these paths (/data/dir, as in the container), with their parents")
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	noSidecarFlag(flags, &opts.noSidecar)
	opts.decrypt.AddFlags(flags)
	return cmd
}

func runRestore(ctx context.Context, dockerCli command.Cli, backup string, opts restoreOptions) error {
	if opts.to == "" {
		return fmt.Errorf("no service to restore into: pass --to SERVICE")
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	c, err := nodecontext.Resolve(ctx, dockerCli, api, opts.project, opts.to)
	if err != nil {
		return err
	}
	if _, statErr := os.Stat(strings.TrimSuffix(backup, artifact.ManifestSuffix)); opts.from == "" && !opts.noSidecar && statErr != nil && c.Project != "" {
		sc, err := sidecarclient.Find(ctx, api, c.Project)
		if err != nil {
			return err
		}
		if sc != nil {
			return restoreSidecar(ctx, dockerCli, sc, c, backup, opts)
		}
	}
	repoKeys := keys.Repository(opts.repoKey)
	keys, err := keys.Keyring(opts.trust)
	if err != nil {
		return err
	}
	ids, err := opts.decrypt.Identities(dockerCli)
	if err != nil {
		return err
	}
	guard := &watchdog.Guard{}
	defer guard.Close()
	log := output.Logger(dockerCli.Err())
	onProgress, done := output.Progress(dockerCli.Err(), "restoring")
	defer done()
	wk, requireWorker, err := worker.ForPlugin(api, log)
	if err != nil {
		return err
	}
	spec := plan.RestoreSpec{Container: c, Keys: keys, AllowUnsigned: opts.allowUnsigned, Identities: ids,
		Options: strategy.Options{User: opts.user, Password: os.Getenv(envPassword), Database: opts.database, NoStop: opts.noStop,
			Worker: wk, RequireWorker: requireWorker},
		Guard: guard, Progress: onProgress, Log: log}
	switch {
	case opts.from != "":
		if spec.Target, err = targets.Open(opts.from); err != nil {
			return err
		}
		spec.Backup, spec.SnapshotKeys, spec.Paths = backup, &repoKeys, opts.paths
		if snapshots.IsRef(backup) {
			membudget.SetRepository(0)
		}
	case backup == plan.Latest:
		return fmt.Errorf(`"latest" needs --from DIR to know where to look`)
	case snapshots.IsRef(backup):
		return fmt.Errorf("%s is an incremental backup: name the target that holds it with --from", backup)
	default:
		if spec.Target, spec.Manifest, err = backupFromPath(ctx, backup); err != nil {
			return err
		}
	}
	p, err := plan.NewRestore(ctx, spec)
	if err != nil {
		return err
	}
	for _, w := range p.Warnings {
		output.Warning(dockerCli.Err(), "%s", w)
	}
	m := p.Manifest
	if !opts.yes {
		if err := confirm(dockerCli, fmt.Sprintf("Restore %s (%s, %s, made %s) into %s? Its current data will be replaced.",
			m.Artifact, m.Strategy, output.Bytes(max(m.Size, m.RawSize)), m.CreatedAt.Local().Format("2006-01-02 15:04:05"), c)); err != nil {
			return err
		}
	}
	if err := p.Run(ctx); err != nil {
		done()
		return ended(outcome.Restore(err))
	}
	done()
	restored := output.Restored{Key: m.Artifact, Into: c.String(), SHA256: m.SHA256}
	switch sn := p.Snapshot(); {
	case sn != nil:
		restored.Key, restored.KeyID = snapshots.Name(sn.Snapshot.ID), sn.Snapshot.KeyID
	case p.Trusted:
		restored.KeyID = m.Signature.KeyID
	}
	output.Restore(dockerCli.Out(), restored)
	return nil
}

// backupFromPath opens the artifact or manifest file at p; its target is the directory
// that the manifest's artifact key is relative to.
func backupFromPath(ctx context.Context, p string) (target.Target, *artifact.Manifest, error) {
	abs, err := filepath.Abs(strings.TrimSuffix(p, artifact.ManifestSuffix))
	if err != nil {
		return nil, nil, err
	}
	// Read as a directory target reads: a regular file only (a named pipe does not hang the
	// restore), no more than a manifest can be.
	dir, err := target.NewLocal(filepath.Dir(abs))
	if err != nil {
		return nil, nil, err
	}
	rc, err := dir.Get(ctx, filepath.Base(abs)+artifact.ManifestSuffix)
	if err != nil {
		if errors.Is(err, target.ErrNotExist) {
			return nil, nil, fmt.Errorf("no backup at %s: its manifest %s is missing (name a backup with --from DIR, see docker backup ls)", p, abs+artifact.ManifestSuffix)
		}
		return nil, nil, fmt.Errorf("reading the manifest of %s: %w", p, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, artifact.MaxManifestSize+1))
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the manifest of %s: %w", p, err)
	}
	m, err := artifact.Unmarshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest of %s: %w", p, err)
	}
	rel := filepath.FromSlash(m.Artifact)
	if !strings.HasSuffix(abs, string(filepath.Separator)+rel) {
		return nil, nil, fmt.Errorf("manifest of %s names the artifact %q, which is not this file: %w", p, m.Artifact, artifact.ErrCorrupt)
	}
	tgt, err := target.NewLocal(strings.TrimSuffix(abs, string(filepath.Separator)+rel))
	if err != nil {
		return nil, nil, err
	}
	m, err = listing.ReadManifest(ctx, tgt, m.Artifact)
	return tgt, m, err
}

func confirm(dockerCli command.Cli, question string) error {
	if !dockerCli.In().IsTerminal() {
		return fmt.Errorf("%s\nrefusing without confirmation: stdin is not a terminal, pass --yes to confirm", question)
	}
	fmt.Fprintf(dockerCli.Out(), "%s [y/N] ", question)
	line, _ := bufio.NewReader(dockerCli.In()).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("restore cancelled")
}

// restoreSidecar finds BACKUP on the sidecar's targets, asks for confirmation and has the
// sidecar restore it.
func restoreSidecar(ctx context.Context, dockerCli command.Cli, sc *sidecarclient.Client, c *containers.Container, backup string, opts restoreOptions) error {
	if opts.user != "" || opts.database != "" || len(opts.trust) > 0 || opts.decrypt.Given() || len(opts.paths) > 0 || opts.repoKey != "" {
		return fmt.Errorf("--user, --database, --trust, --paths, --repository-key-file and the decryption flags apply to direct restores (with --from); the sidecar %s restores with what the backup recorded, its own keys and its own identity, DOCKER_BACKUP_AGE_IDENTITY_FILE (or pass --no-sidecar)", sc.Name())
	}
	m, tgt, err := sidecarBackup(ctx, sc, c, backup, opts.allowUnsigned, "restored")
	if err != nil {
		return err
	}
	if !opts.yes {
		if err := confirm(dockerCli, fmt.Sprintf("Restore %s (%s, %s, made %s, target %s) into %s? Its current data will be replaced.",
			m.Key, m.Strategy, output.Bytes(m.Size), m.CreatedAt.Local().Format("2006-01-02 15:04:05"), tgt, c)); err != nil {
			return err
		}
	}
	// Asked for "latest" without a question, the sidecar chooses it while it holds the service:
	// a backup that finishes meanwhile (and prunes) cannot take the chosen one away.
	key := m.Key
	if backup == plan.Latest && opts.yes {
		key = plan.Latest
	}
	res, err := sc.Stream(ctx, control.PathRestore, control.RestoreRequest{Project: c.Project, Service: c.Service, Key: key, Target: tgt,
		NoStop: opts.noStop, AllowUnsigned: opts.allowUnsigned}, func(ev control.Event) { fmt.Fprintln(dockerCli.Err(), output.Event(ev)) })
	if err != nil {
		return ended(outcome.Restore(err))
	}
	restored := output.Restored{Key: res.Key, Into: c.String(), SHA256: m.SHA256, Sidecar: sc.Name()}
	if res.Backup != nil {
		restored.SHA256 = res.Backup.SHA256
	}
	output.Restore(dockerCli.Out(), restored)
	return nil
}

// sidecarBackup finds BACKUP (a key, or "latest": the newest usable backup of the service
// as selection.Filter decides, over every target of the sidecar) on the sidecar's targets,
// and the target it is on.
func sidecarBackup(ctx context.Context, sc *sidecarclient.Client, c *containers.Container, backup string, allowUnsigned bool, what string) (artifact.Summary, string, error) {
	var lists []control.Backups
	if err := sc.Get(ctx, control.PathBackups, url.Values{"project": {c.Project}, "service": {c.Service}}, &lists); err != nil {
		return artifact.Summary{}, "", err
	}
	key := strings.TrimSuffix(backup, artifact.ManifestSuffix)
	var all []artifact.Summary
	where := map[string]string{}
	for _, l := range lists {
		for _, w := range l.Backups {
			b := wire.ToSummary(w)
			if b.Key == key {
				return b, l.Target, nil
			}
			all = append(all, b)
			where[b.Key] = l.Target
		}
	}
	if key == plan.Latest {
		f := selection.Filter{Project: c.Project, Service: c.Service, AllowUnsigned: allowUnsigned}
		if s, _, ok := f.Latest(all); ok {
			return s, where[s.Key], nil
		}
	}
	return artifact.Summary{}, "", fmt.Errorf("no backup %q of %s that can be %s on the targets of sidecar %s: list them with `docker backup ls --service %s`", backup, c, what, sc.Name(), c.Service)
}
