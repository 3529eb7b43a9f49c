package commands

import (
	"strings"

	"github.com/docker-backup/docker-backup/internal/targets"
)

// targetURLs names the URLs a target can be, from the registry: "s3://, sftp:// or gs:// URL".
func targetURLs() string {
	var schemes []string
	for _, k := range targets.Kinds() {
		schemes = append(schemes, k.Scheme+"://")
	}
	if len(schemes) < 2 {
		return strings.Join(schemes, "") + " URL"
	}
	return strings.Join(schemes[:len(schemes)-1], ", ") + " or " + schemes[len(schemes)-1] + " URL"
}
