package target

import (
	"fmt"
	"strings"
)

// Open returns the target a user names: a directory path (or file:// URL) for a local
// target, an s3:// URL for an S3-compatible bucket, an sftp:// URL for a directory on an SSH
// server.
func Open(spec string) (Target, error) { return OpenWith(spec, "") }

// Supported names the kinds of targets, for errors.
const Supported = "a directory path, file://, s3:// or sftp://USER@HOST[:PORT]/PATH"

// OpenWith is Open with an environment prefix for a target's own credentials (see
// S3Config.CredentialsEnv and SFTPConfig.CredentialsEnv).
func OpenWith(spec, credentialsEnv string) (Target, error) {
	switch {
	case spec == "":
		return nil, fmt.Errorf("no target given: pass a backup directory, an s3:// or an sftp:// URL, e.g. --to ./backups")
	case strings.HasPrefix(spec, "file://"):
		return NewLocal(strings.TrimPrefix(spec, "file://"))
	case strings.HasPrefix(spec, "s3://"):
		cfg, err := ParseS3URL(spec)
		if err != nil {
			return nil, err
		}
		cfg.CredentialsEnv = credentialsEnv
		return NewS3(cfg)
	case strings.HasPrefix(spec, "sftp://"):
		cfg, err := ParseSFTPURL(spec)
		if err != nil {
			return nil, err
		}
		cfg.CredentialsEnv = credentialsEnv
		return NewSFTP(cfg)
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		if strings.Contains(spec, "@") { // it may hold credentials: not shown
			return nil, fmt.Errorf("target: unsupported scheme %q (supported: %s)", scheme, Supported)
		}
		return nil, fmt.Errorf("target %q: unsupported scheme %q (supported: %s)", spec, scheme, Supported)
	}
	return NewLocal(spec)
}
