package commands

import (
	"context"
	"fmt"
	"os"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/sidecarclient"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

type keyOptions struct {
	project   string
	noSidecar bool
}

func newKeyCommand(dockerCli command.Cli) *cobra.Command {
	var opts keyOptions
	cmd := &cobra.Command{
		Use:   "key [OPTIONS]",
		Short: "Print the public keys that verify this plugin's (and the project's sidecar's) backups",
		Long: `Print the public keys that verify the backups this plugin signs and, in a project with a
sidecar, the sidecar's: one line each, the form trusted-key files list them.

Backups are signed with Ed25519. The signing key stays on the host that makes the backups
(the plugin's is made on first use in the docker CLI's configuration directory, or named by
$` + keys.EnvSigningKey + `); a host that only restores or verifies them is given the public key
instead, which cannot sign: put the lines in a file and pass it with --trust FILE, or set
$` + artifact.EnvTrustedKeysFile + ` (the sidecar too).`,
		Example: `  docker backup key                        # this plugin's key, and the sidecar's of the project
  docker backup key -p shop >> trusted.keys  # on the backup host
  docker backup restore latest --from s3://backups/shop --to db --trust trusted.keys   # elsewhere`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKey(cmd.Context(), dockerCli, opts)
		},
	}
	flags := cmd.Flags()
	projectFlag(flags, &opts.project)
	noSidecarFlag(flags, &opts.noSidecar)
	return cmd
}

func runKey(ctx context.Context, dockerCli command.Cli, opts keyOptions) error {
	k, err := keys.Signer(dockerCli.Err())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	fmt.Fprintf(dockerCli.Out(), "%s plugin@%s (key %s)\n", k.Public(), host, k.ID())
	if opts.noSidecar || opts.project == "" {
		return nil
	}
	api, err := dockerAPI(ctx, dockerCli)
	if err != nil {
		return err
	}
	sc, err := sidecarclient.Find(ctx, api, opts.project)
	if err != nil || sc == nil {
		return err
	}
	var st control.Status
	if err := sc.Get(ctx, control.PathStatus, nil, &st); err != nil {
		return err
	}
	if st.PublicKey == "" {
		return fmt.Errorf("sidecar %s (version %s) does not say its public key: update it", sc.Name(), st.Version)
	}
	fmt.Fprintf(dockerCli.Out(), "%s sidecar %s@%s (key %s)\n", st.PublicKey, sc.Name(), st.Host, st.SigningKey)
	return nil
}
