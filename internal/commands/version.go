package commands

import (
	"encoding/json"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func newVersionCommand(dockerCli command.Cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the plugin's version, commit, Go version and platform",
		Example: `  docker backup version
  docker backup version --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := version.Get()
			switch format {
			case "text":
				_, err := fmt.Fprint(dockerCli.Out(), info.Text())
				return err
			case "json":
				enc := json.NewEncoder(dockerCli.Out())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			return fmt.Errorf("unknown --format %q: use text or json", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "Output format: text or json")
	return cmd
}
