package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type restoreOptions struct {
	from      string
	to        string
	project   string
	yes       bool
	noStop    bool
	user      string
	database  string
	noSidecar bool
}

func newRestoreCommand(dockerCli command.Cli) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] BACKUP",
		Short: "Restore a backup into a service, after verifying its checksum",
		Long: `Restore a backup into a service. BACKUP is a backup's name as "docker backup ls" shows it
(with --from), "latest" (the newest backup of the --to service, with --from), or the path of an
artifact or manifest file. The whole artifact is checked against the SHA-256 in its manifest
before anything in the container is touched; a damaged or truncated artifact is refused.

The volume strategy stops a running container during the restore and starts it again after.

Without --from, in a project with a sidecar, BACKUP is looked up on the sidecar's targets
("latest" included) and the sidecar restores it; no backup job of the service runs meanwhile.`,
		Example: `  docker backup restore latest --to db --yes          # through the project's sidecar
  docker backup restore myapp/db/db-postgres-20261125T020000.000Z.sql.zst --from ./backups --to db
  docker backup restore latest --from ./backups --to db --project myapp --yes
  docker backup restore ./backups/myapp/files/files-volume-20261125T020000.000Z.tar.zst --to files`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory or s3:// URL (default: $"+envTarget+")")
	flags.StringVar(&opts.to, "to", "", "Service (or container name or ID) to restore into (required)")
	projectFlag(flags, &opts.project)
	flags.BoolVarP(&opts.yes, "yes", "y", false, "Do not ask for confirmation")
	flags.BoolVarP(&opts.yes, "force", "f", false, "Same as --yes")
	flags.BoolVar(&opts.noStop, "no-stop", false, "Volume strategy: restore into the running container without stopping it")
	flags.StringVar(&opts.user, "user", "", "Database user (default: from the container's environment; its password from $"+envPassword+")")
	flags.StringVar(&opts.database, "database", "", "postgres: database (default: from the container's environment); sqlite: the database file (default: the backed-up path)")
	noSidecarFlag(flags, &opts.noSidecar)
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
	c, err := findService(ctx, api, opts.project, opts.to)
	if err != nil {
		return err
	}
	if _, statErr := os.Stat(strings.TrimSuffix(backup, artifact.ManifestSuffix)); opts.from == "" && !opts.noSidecar && statErr != nil && c.Project != "" {
		sc, err := findSidecar(ctx, api, c.Project)
		if err != nil {
			return err
		}
		if sc != nil {
			return restoreSidecar(ctx, dockerCli, sc, c, backup, opts)
		}
	}
	tgt, m, err := resolveBackup(ctx, backup, opts.from, c)
	if err != nil {
		return err
	}
	if !detect.Supports(ctx, c, m.Strategy) {
		var have []string
		for _, cand := range detect.All(ctx, c) {
			have = append(have, cand.Strategy)
		}
		return fmt.Errorf("refusing to restore: %s is a %s backup, but %s (image %s) does not look like a %s server (it supports: %s); if it is one, label it %s=%s",
			m.Artifact, m.Strategy, c, c.Image, m.Strategy, strings.Join(append(have, "none")[:max(len(have), 1)], ", "), detect.LabelStrategy, m.Strategy)
	}
	log := logger(dockerCli.Err())
	strat, err := strategy.New(m.Strategy, strategy.Options{User: opts.user, Password: os.Getenv(envPassword), Database: opts.database, Log: log})
	if err != nil {
		return err
	}
	warnVersion(ctx, dockerCli, c, m, strat)

	if !opts.yes {
		if err := confirm(dockerCli, fmt.Sprintf("Restore %s (%s, %s, made %s) into %s? Its current data will be replaced.",
			m.Artifact, m.Strategy, humanBytes(m.Size), m.CreatedAt.Local().Format("2006-01-02 15:04:05"), c)); err != nil {
			return err
		}
	}

	onProgress, done := progress(dockerCli, "restoring")
	err = engine.Restore(ctx, engine.RestoreRequest{
		Target:        tgt,
		Manifest:      m,
		Container:     c,
		Strategy:      strat,
		StopContainer: m.Strategy == "volume" && !opts.noStop, // redis and sqlite stop it themselves
		Progress:      onProgress,
		Log:           log,
	})
	done()
	if err != nil {
		if errors.Is(err, engine.ErrCorrupt) {
			return err
		}
		return fmt.Errorf("restore failed: %w", err)
	}
	fmt.Fprintf(dockerCli.Out(), "Restored %s into %s (sha256 %s verified)\n", m.Artifact, c, artifact.ShortSHA(m.SHA256))
	return nil
}

// resolveBackup finds the target and manifest a user means by BACKUP.
func resolveBackup(ctx context.Context, backup, from string, c *containers.Container) (target.Target, *artifact.Manifest, error) {
	if from != "" {
		tgt, err := target.Open(from)
		if err != nil {
			return nil, nil, err
		}
		if backup == "latest" {
			m, err := latest(ctx, tgt, c)
			return tgt, m, err
		}
		m, err := engine.ReadManifest(ctx, tgt, strings.TrimSuffix(backup, artifact.ManifestSuffix))
		return tgt, m, err
	}
	if backup == "latest" {
		return nil, nil, fmt.Errorf(`"latest" needs --from DIR to know where to look`)
	}
	return backupFromPath(ctx, backup)
}

// backupFromPath opens the artifact or manifest file at p; its target is the directory
// that the manifest's artifact key is relative to.
func backupFromPath(ctx context.Context, p string) (target.Target, *artifact.Manifest, error) {
	abs, err := filepath.Abs(strings.TrimSuffix(p, artifact.ManifestSuffix))
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(abs + artifact.ManifestSuffix)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("no backup at %s: its manifest %s is missing (name a backup with --from DIR, see docker backup ls)", p, abs+artifact.ManifestSuffix)
		}
		return nil, nil, fmt.Errorf("reading the manifest of %s: %w", p, err)
	}
	m, err := artifact.Unmarshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest of %s: %w", p, err)
	}
	rel := filepath.FromSlash(m.Artifact)
	if !strings.HasSuffix(abs, string(filepath.Separator)+rel) {
		return nil, nil, fmt.Errorf("manifest of %s names the artifact %q, which is not this file: %w", p, m.Artifact, engine.ErrCorrupt)
	}
	tgt, err := target.NewLocal(strings.TrimSuffix(abs, string(filepath.Separator)+rel))
	if err != nil {
		return nil, nil, err
	}
	m, err = engine.ReadManifest(ctx, tgt, m.Artifact)
	return tgt, m, err
}

// latest returns the newest backup made of c's service (in c's project when there are some).
func latest(ctx context.Context, tgt target.Target, c *containers.Container) (*artifact.Manifest, error) {
	listing, err := engine.List(ctx, tgt, "")
	if err != nil {
		return nil, err
	}
	service := c.Service
	if service == "" {
		service = c.Name
	}
	var sameService *artifact.Manifest
	for _, m := range listing.Backups {
		if m.Service != service && !(m.Service == "" && m.Container == service) {
			continue
		}
		if m.Project == c.Project {
			return m, nil
		}
		if sameService == nil {
			sameService = m
		}
	}
	if sameService != nil {
		return sameService, nil
	}
	return nil, fmt.Errorf("no backup of service %q in %s", service, tgt)
}

// warnVersion warns when the server's major version differs from the backed-up one.
func warnVersion(ctx context.Context, dockerCli command.Cli, c *containers.Container, m *artifact.Manifest, strat strategy.Strategy) {
	v, ok := strat.(strategy.Versioned)
	if !ok || m.Source["server_version"] == "" || !c.Running {
		return
	}
	have, err := v.ServerVersion(ctx, c)
	if err != nil {
		return
	}
	if v.Major(have) != v.Major(m.Source["server_version"]) {
		fmt.Fprintf(dockerCli.Err(), "warning: the backup was made from %s server %s and %s runs %s: a dump usually restores into a newer major version, rarely into an older one\n",
			m.Strategy, m.Source["server_version"], c, have)
	}
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
func restoreSidecar(ctx context.Context, dockerCli command.Cli, sc *sidecarClient, c *containers.Container, backup string, opts restoreOptions) error {
	if opts.user != "" || opts.database != "" {
		return fmt.Errorf("--user and --database apply to direct restores (with --from); the sidecar %s restores with what the backup recorded (or pass --no-sidecar)", sc.c.Name)
	}
	var lists []control.Backups
	if err := sc.get(ctx, control.PathBackups, url.Values{"project": {c.Project}, "service": {c.Service}}, &lists); err != nil {
		return err
	}
	key := strings.TrimSuffix(backup, artifact.ManifestSuffix)
	var m *artifact.Manifest
	var tgt string
	for _, l := range lists {
		for _, b := range l.Backups {
			if (key == "latest" && (m == nil || b.CreatedAt.After(m.CreatedAt))) || b.Artifact == key {
				m, tgt = b, l.Target
			}
		}
	}
	if m == nil {
		return fmt.Errorf("no backup %q of %s on the targets of sidecar %s: list them with `docker backup ls --service %s`", backup, c, sc.c.Name, c.Service)
	}
	if !opts.yes {
		if err := confirm(dockerCli, fmt.Sprintf("Restore %s (%s, %s, made %s, target %s) into %s? Its current data will be replaced.",
			m.Artifact, m.Strategy, humanBytes(m.Size), m.CreatedAt.Local().Format("2006-01-02 15:04:05"), tgt, c)); err != nil {
			return err
		}
	}
	res, err := sc.stream(ctx, control.PathRestore, control.RestoreRequest{Project: c.Project, Service: c.Service, Key: m.Artifact, Target: tgt, NoStop: opts.noStop},
		func(ev control.Event) { fmt.Fprintln(dockerCli.Err(), eventLine(ev)) })
	if err != nil {
		if strings.Contains(err.Error(), engine.ErrCorrupt.Error()) {
			return err
		}
		return fmt.Errorf("restore failed: %w", err)
	}
	fmt.Fprintf(dockerCli.Out(), "Restored %s into %s (sha256 %s verified, by sidecar %s)\n", res.Key, c, artifact.ShortSHA(m.SHA256), sc.c.Name)
	return nil
}
