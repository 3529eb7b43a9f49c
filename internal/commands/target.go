package commands

import (
	"context"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func newTargetCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Check backup targets",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTargetCheckCommand(dockerCli))
	return cmd
}

func newTargetCheckCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "check TARGET",
		Short: "Write, list, read and delete a probe object, and say which permission is missing",
		Example: `  docker backup target check ./backups
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... docker backup target check 's3://backups/host1?endpoint=https://minio.example.com'
  DOCKER_BACKUP_SFTP_KEY_FILE=~/.ssh/backup_ed25519 docker backup target check sftp://u123@u123.your-storagebox.de:23/backups
  DOCKER_BACKUP_SMB_PASSWORD_FILE=~/.nas-password docker backup target check smb://backup@nas.lan/backups/host1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTargetCheck(cmd.Context(), dockerCli, args[0])
		},
	}
}

func runTargetCheck(ctx context.Context, dockerCli command.Cli, spec string) error {
	tgt, err := targets.Open(spec)
	if err != nil {
		return err
	}
	out := dockerCli.Out()
	fmt.Fprintf(out, "Checking %s\n", tgt)
	failed := 0
	for _, s := range target.Check(ctx, tgt) {
		if s.Err == nil {
			fmt.Fprintf(out, "  ok      %s\n", s.Operation)
			continue
		}
		failed++
		fmt.Fprintf(out, "  FAILED  %s: %v\n", s.Operation, s.Err)
		if need := target.Requirement(tgt, s.Operation); need != "" {
			fmt.Fprintf(out, "          %s\n", need)
		}
	}
	if failed > 0 {
		return fmt.Errorf("target %s is not usable: %d of its checks failed", tgt, failed)
	}
	fmt.Fprintln(out, "The target is ready for backups.")
	return nil
}
