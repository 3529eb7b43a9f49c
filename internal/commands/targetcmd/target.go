package targetcmd

import (
	"context"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/commands/output"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
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

type targetCheckOptions struct {
	size   string
	format string
}

func newTargetCheckCommand(dockerCli command.Cli) *cobra.Command {
	var opts targetCheckOptions
	cmd := &cobra.Command{
		Use:   "check TARGET",
		Short: "Prove a target keeps backups safe (write, no overwrite, interrupted write, list, read, delete) and measure its speed",
		Long: `Check writes a probe object, proves a second write of its key is refused and changes nothing,
that a write whose source fails leaves nothing listed, lists, reads back and deletes it, naming the
step that fails and what the credentials need for it. Then it writes --size bytes, reads them back
comparing every byte, and reports the latency of each step and the throughput each way.`,
		Example: `  docker backup target check ./backups
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... docker backup target check 's3://backups/host1?endpoint=https://minio.example.com'
  DOCKER_BACKUP_SFTP_KEY_FILE=~/.ssh/backup_ed25519 docker backup target check sftp://u123@u123.your-storagebox.de:23/backups
  DOCKER_BACKUP_SMB_PASSWORD_FILE=~/.nas-password docker backup target check smb://backup@nas.lan/backups/host1
  docker backup target check --size 100MiB --format json sftp://backup@nas.lan/backups`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTargetCheck(cmd.Context(), dockerCli, args[0], opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.size, "size", "8MiB", "How much to write and read back to measure throughput, like 8MiB or 1GiB; 0 skips it")
	flags.StringVar(&opts.format, "format", "table", "Output format: table or json")
	return cmd
}

func runTargetCheck(ctx context.Context, dockerCli command.Cli, spec string, opts targetCheckOptions) error {
	if opts.format != "table" && opts.format != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", opts.format)
	}
	size, err := units.RAMInBytes(opts.size)
	if err != nil || size < 0 {
		return fmt.Errorf("--size %q: give a size like 8MiB, 500KiB or 1GiB, or 0 to skip the throughput test", opts.size)
	}
	tgt, err := targets.Open(spec)
	if err != nil {
		return err
	}
	report := output.TargetChecked{Target: tgt.String(), Ready: true}
	for _, s := range target.Check(ctx, tgt) {
		step := output.CheckedStep{Operation: s.Operation, OK: s.Err == nil, Seconds: s.Took.Seconds()}
		if s.Err != nil {
			step.Error, step.Needs, report.Ready = s.Err.Error(), target.Requirement(tgt, s.Operation), false
		}
		report.Steps = append(report.Steps, step)
	}
	if report.Ready && size > 0 {
		m, err := target.Measure(ctx, tgt, size)
		report.Throughput = &output.Measured{Bytes: m.Bytes, UploadSeconds: m.Upload.Seconds(), DownloadSeconds: m.Download.Seconds()}
		if err != nil {
			report.Throughput.Error, report.Ready = err.Error(), false
		}
	}
	if err := output.TargetCheck(dockerCli.Out(), report, opts.format); err != nil {
		return err
	}
	if !report.Ready {
		return fmt.Errorf("target %s is not usable: a check failed", tgt)
	}
	return nil
}
