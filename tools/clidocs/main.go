// Command clidocs writes the CLI reference of `docker backup` (make docs).
package main

import (
	"fmt"
	"os"

	"github.com/docker-backup/docker-backup/internal/commands"
)

func main() {
	dir := "docs/cli"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := commands.WriteReference(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
