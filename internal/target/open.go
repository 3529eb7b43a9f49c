package target

import (
	"fmt"
	"strings"
)

// Open returns the target a user names: a directory path (or file:// URL) for a local target.
func Open(spec string) (Target, error) {
	switch {
	case spec == "":
		return nil, fmt.Errorf("no target given: pass a backup directory, e.g. --to ./backups")
	case strings.HasPrefix(spec, "file://"):
		return NewLocal(strings.TrimPrefix(spec, "file://"))
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		return nil, fmt.Errorf("target %q: unsupported scheme %q (supported: a directory path or file://)", spec, scheme)
	}
	return NewLocal(spec)
}
