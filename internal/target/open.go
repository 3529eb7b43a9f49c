package target

import (
	"fmt"
	"strings"
)

// Open returns the target a user names: a directory path (or file:// URL) for a local
// target, an s3:// URL for an S3-compatible bucket.
func Open(spec string) (Target, error) { return OpenWith(spec, "") }

// OpenWith is Open with an environment prefix for S3 credentials (see S3Config.CredentialsEnv).
func OpenWith(spec, credentialsEnv string) (Target, error) {
	switch {
	case spec == "":
		return nil, fmt.Errorf("no target given: pass a backup directory or an s3:// URL, e.g. --to ./backups")
	case strings.HasPrefix(spec, "file://"):
		return NewLocal(strings.TrimPrefix(spec, "file://"))
	case strings.HasPrefix(spec, "s3://"):
		cfg, err := ParseS3URL(spec)
		if err != nil {
			return nil, err
		}
		cfg.CredentialsEnv = credentialsEnv
		return NewS3(cfg)
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		if strings.Contains(spec, "@") { // it may hold credentials: not shown
			return nil, fmt.Errorf("target: unsupported scheme %q (supported: a directory path, file:// or s3://)", scheme)
		}
		return nil, fmt.Errorf("target %q: unsupported scheme %q (supported: a directory path, file:// or s3://)", spec, scheme)
	}
	return NewLocal(spec)
}
