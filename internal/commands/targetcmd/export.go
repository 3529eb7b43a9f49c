package targetcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type exportOptions struct {
	from    string
	output  string
	trust   []string
	repoKey string
	decrypt keys.Decrypt
}

func newExportCommand(dockerCli command.Cli, envTarget string) *cobra.Command {
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] SNAPSHOT",
		Short: "Write an incremental backup as the self-contained file a full backup is",
		Long: `Write an incremental backup (snapshot:ID, as "docker backup ls" shows it) as the file a full
backup of the same data is: a volume's files as a zstd-compressed PAX tar (.tar.zst), a
dump as the compressed dump (.sql.zst, ...). It needs nothing of docker-backup to read
(tar, zstd, psql), so no one is locked into the repository format.

Every chunk is verified (and decrypted) as it is read; the file is written beside its name
and renamed into place only when complete.`,
		Example: `  docker backup export snapshot:3f2a9c1b7d4e --from ./backups -o files.tar.zst
  docker backup export snapshot:3f2a9c1b7d4e --from s3://backups/site-a -o - | zstd -dc | tar -t`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory, "+targets.URLs()+" (default: $"+envTarget+")")
	flags.StringVarP(&opts.output, "output", "o", "", `File to write ("-": standard output; default: SERVICE-STRATEGY-ID.EXT.zst in the current directory)`)
	keys.TrustFlag(flags, &opts.trust)
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	opts.decrypt.AddFlags(flags)
	return cmd
}

func runExport(ctx context.Context, dockerCli command.Cli, ref string, opts exportOptions) error {
	if _, ok := snapshots.ParseRef(ref); !ok {
		return fmt.Errorf("%s is not an incremental backup (snapshot:ID): a full backup is already a self-contained file", ref)
	}
	membudget.SetRepository(0)
	if opts.from == "" {
		return fmt.Errorf("%s is an incremental backup: name the target that holds it with --from", ref)
	}
	tgt, err := targets.Open(opts.from)
	if err != nil {
		return err
	}
	r, s, err := keys.Snapshot(ctx, dockerCli, tgt, ref, keys.Repository(opts.repoKey), opts.trust, opts.decrypt)
	if err != nil {
		return err
	}
	strat, err := strategies.New(s.Strategy, strategy.Options{})
	if err != nil {
		return err
	}
	rd, err := r.NewReader(ctx)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		zw, err := artifact.Zstd.NewWriter(w)
		if err != nil {
			return err
		}
		if err := snapshots.Stream(ctx, rd, s, nil, zw); err != nil {
			zw.Close()
			return err
		}
		return zw.Close()
	}
	if opts.output == "-" {
		return write(dockerCli.Out())
	}
	name := opts.output
	if name == "" {
		who := s.Service
		if who == "" {
			who = s.Container
		}
		name = fmt.Sprintf("%s-%s-%s.%s.%s", who, s.Strategy, snapshots.ShortID(s.ID), strat.Extension(), artifact.Zstd.Extension())
	}
	if err := writeFileAtomic(name, write); err != nil {
		return fmt.Errorf("exporting %s: %w", snapshots.Name(s.ID), err)
	}
	fmt.Fprintf(dockerCli.Out(), "Exported %s (%s of %s) to %s\n", snapshots.Name(s.ID), s.Strategy, artifact.ServiceName(s.Project, s.Service, s.Container), name)
	return nil
}

// writeFileAtomic writes name through a temporary file beside it, renamed into place once
// write succeeded and the bytes are on disk.
func writeFileAtomic(name string, write func(io.Writer) error) error {
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("%s exists: refusing to replace it", name)
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), name) // fails rather than replace a file made meanwhile
	}
	return errors.Join(err, os.Remove(f.Name()))
}
