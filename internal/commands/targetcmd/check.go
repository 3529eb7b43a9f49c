// Package targetcmd is the plugin's commands that work on a target alone, without a service:
// target check (can it hold backups), check (prove its repository of incremental backups) and
// export (a snapshot as the file a full backup is).
package targetcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/membudget"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type checkOptions struct {
	from     string
	readData string
	trust    []string
	repoKey  string
	decrypt  keys.Decrypt
}

// Commands are target, check and export; envTarget names the variable of the default target.
func Commands(dockerCli command.Cli, envTarget string) []*cobra.Command {
	return []*cobra.Command{newTargetCommand(dockerCli), newCheckCommand(dockerCli, envTarget), newExportCommand(dockerCli, envTarget)}
}

func newCheckCommand(dockerCli command.Cli, envTarget string) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Prove the repository of incremental backups on a target",
		Long: `Prove the repository of incremental backups on a target (` + snapshots.Dir + `/): every index file
hashes to its name, every indexed pack exists with its size, every snapshot is signed by a
trusted key and every chunk it references is indexed in an existing pack. --read-data also
downloads packs (all, or N% of them chosen at random), hashes them and checks every chunk
they hold against its ID (decrypted first).

Packs no index lists (left by an interrupted backup) are reported, not an error: the next
prune removes them. A check that finds problems exits with status 4.`,
		Example: `  docker backup check --from ./backups
  docker backup check --from s3://backups/site-a --read-data=10%`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), dockerCli, envTarget, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", os.Getenv(envTarget), "Backup directory, "+targets.URLs()+" (default: $"+envTarget+")")
	flags.StringVar(&opts.readData, "read-data", "0%", "Also read and check this share of the packs (N%, or 100% when given without a value)")
	flags.Lookup("read-data").NoOptDefVal = "100%"
	keys.TrustFlag(flags, &opts.trust)
	keys.RepositoryKeyFlag(flags, &opts.repoKey)
	opts.decrypt.AddFlags(flags)
	return cmd
}

func runCheck(ctx context.Context, dockerCli command.Cli, envTarget string, opts checkOptions) error {
	share, err := snapshots.ParseShare(opts.readData)
	if err != nil {
		return fmt.Errorf("--read-data: %w", err)
	}
	membudget.SetRepository(0)
	if opts.from == "" {
		return fmt.Errorf("no target given: pass --from DIR or %s (or set $%s)", targets.URLs(), envTarget)
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
	r, err := snapshots.Open(ctx, tgt, keys.Repository(opts.repoKey), repo.Access{Trust: trust, Identities: ids})
	if err != nil {
		return err
	}
	res, err := r.Check(ctx, share)
	if res == nil {
		return fmt.Errorf("checking the repository in %s: %w", tgt, err)
	}
	printCheck(dockerCli.Out(), r, res)
	if err != nil {
		err = fmt.Errorf("the repository in %s has %d problems: %w", tgt, len(res.Problems), errors.Join(res.Problems...))
		return cli.StatusError{StatusCode: outcome.ExitVerifyFailed, Status: err.Error()}
	}
	return nil
}

func printCheck(w io.Writer, r *repo.Repo, res *repo.CheckResult) {
	verdict := "PASSED"
	if len(res.Problems) > 0 {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "Repository %s in %s: %s\n", r.ID(), r.Target(), verdict)
	fmt.Fprintf(w, "  snapshots %d\n  packs     %d (%d read and checked)\n  chunks    %d\n", res.Snapshots, res.Packs, res.ReadPacks, res.Blobs)
	if len(res.Unindexed) > 0 {
		fmt.Fprintf(w, "  unindexed %d packs left by interrupted backups (the next prune removes them)\n", len(res.Unindexed))
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "  problem   %v\n", p)
	}
}
