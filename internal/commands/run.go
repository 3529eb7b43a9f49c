package commands

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/engine"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type runOptions struct {
	project     string
	strategy    string
	to          string
	compression string
	stop        bool
	user        string
	database    string
	paths       []string
}

func newRunCommand(dockerCli command.Cli) *cobra.Command {
	var opts runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE",
		Short: "Back up one service now",
		Long: `Back up one service now. SERVICE is a compose service (of --project) or a container name or ID.
The strategy is detected (see "docker backup detect") unless --strategy is given.`,
		Example: `  docker backup run db --project myapp --to ./backups
  docker backup run files --project myapp --strategy volume --paths /data --to /srv/backups
  docker backup run db --to ./backups --compression gzip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	flags.StringVar(&opts.strategy, "strategy", "", "Strategy: "+strategyNames+" (default: detected)")
	flags.StringVar(&opts.to, "to", os.Getenv(envTarget), "Backup directory or s3:// URL (default: $"+envTarget+")")
	flags.StringVar(&opts.compression, "compression", string(artifact.Zstd), "Compression: zstd or gzip")
	flags.BoolVar(&opts.stop, "stop", false, "Stop the container during the backup and start it again after")
	flags.StringVar(&opts.user, "user", "", "Database user (default: from the container's environment; its password from $"+envPassword+")")
	flags.StringVar(&opts.database, "database", "", "postgres: database; mysql: databases, comma-separated (default: all); sqlite: the database file's path (required)")
	flags.StringSliceVar(&opts.paths, "paths", nil, "Volume strategy: absolute paths in the container (default: its volumes and bind mounts)")
	return cmd
}

func runRun(ctx context.Context, dockerCli command.Cli, service string, opts runOptions) error {
	comp, err := artifact.ParseCompression(opts.compression)
	if err != nil {
		return err
	}
	if opts.strategy != "" {
		if _, err := strategy.New(opts.strategy, strategy.Options{}); err != nil {
			return err
		}
	}
	tgt, err := target.Open(opts.to)
	if err != nil {
		return err
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	c, err := findService(ctx, api, opts.project, service)
	if err != nil {
		return err
	}
	if reason := detect.Excluded(c); reason != "" && opts.strategy == "" {
		return fmt.Errorf("%s is not backed up (%s)", c, reason)
	}
	name := opts.strategy
	if name == "" {
		cands := detect.All(ctx, c)
		if len(cands) == 0 {
			return fmt.Errorf("cannot tell how to back up %s (image %s): no database recognised and no volumes; choose with --strategy (%s)", c, c.Image, strategyNames)
		}
		name = cands[0].Strategy
		fmt.Fprintf(dockerCli.Err(), "Using the %s strategy (%s)\n", name, cands[0].Reason)
	}
	if name == "sqlite" && opts.database == "" {
		msg := "the sqlite strategy needs the database file: pass --database /path/in/container/app.db"
		if files := detect.SQLiteFiles(ctx, c); len(files) > 0 {
			msg += " (SQLite files in " + c.Name + ": " + strings.Join(files, ", ") + ")"
		}
		return fmt.Errorf("%s", msg)
	}
	log := logger(dockerCli.Err())
	strat, err := strategy.New(name, strategy.Options{User: opts.user, Password: os.Getenv(envPassword), Database: opts.database, Paths: opts.paths, Log: log})
	if err != nil {
		return err
	}
	onProgress, done := progress(dockerCli, "backing up")
	res, err := engine.Backup(ctx, engine.BackupRequest{
		Container:     c,
		Strategy:      strat,
		Target:        tgt,
		Compression:   comp,
		StopContainer: opts.stop,
		Progress:      onProgress,
		Log:           log,
	})
	done()
	if err != nil {
		return fmt.Errorf("backup failed, nothing was stored: %w", err)
	}
	m := res.Manifest
	out := dockerCli.Out()
	fmt.Fprintf(out, "Backed up %s with the %s strategy in %s\n", c, m.Strategy, res.Duration.Round(1e7))
	fmt.Fprintf(out, "  backup   %s\n", res.Key)
	fmt.Fprintf(out, "  target   %s\n", tgt)
	fmt.Fprintf(out, "  size     %s stored, %s of data (%.1fx)\n", humanBytes(m.Size), humanBytes(m.RawSize), float64(m.RawSize)/float64(max(m.Size, 1)))
	fmt.Fprintf(out, "  rate     %s\n", rate(m.RawSize, res.Duration))
	fmt.Fprintf(out, "  sha256   %s\n", m.SHA256)
	return nil
}
