// Package mountpath answers questions about clean absolute paths in a container and the
// mounts that hold them: whether a path lies inside a directory, which of several holds it,
// and whether it is a staged restore's directory at a mount's root.
package mountpath

import (
	"path"
	"strings"
)

// Inside reports whether the clean absolute path p is dir or below it.
func Inside(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// Holder returns the first of dirs that holds p.
func Holder(p string, dirs []string) (string, bool) {
	for _, d := range dirs {
		if Inside(p, d) {
			return d, true
		}
	}
	return "", false
}

// WorkerStaging is a worker's own staging directory (a volume of its own, removed with it), where
// a staged restore keeps the new content of mounted files until the commit.
const WorkerStaging = "/.docker-backup-staging"

// StagingPrefix begins the name of the directory a staged restore unpacks into, at the root of
// each volume it writes to ("<prefix><12 hex digits>"). It is removed when the restore ends;
// one left by a power cut is removed by the next restore into the volume, and backups skip it.
const StagingPrefix = ".docker-backup-restore-"

// IsStaging reports whether abs is a staged restore's directory: named StagingPrefix and 12
// hexadecimal digits, directly in one of mounts.
func IsStaging(abs string, mounts []string) bool {
	dir, base := path.Split(abs)
	rest, ok := strings.CutPrefix(base, StagingPrefix)
	if !ok || len(rest) != 12 || strings.Trim(rest, "0123456789abcdef") != "" {
		return false
	}
	dir = path.Clean(dir)
	for _, m := range mounts {
		if path.Clean(m) == dir {
			return true
		}
	}
	return false
}
