package rclone

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Form is what an rclone target's name looks like.
const Form = "rclone:REMOTE:[PATH]"

// Config is what names an rclone target.
type Config struct {
	Remote string // the section of rclone.conf
	Path   string // the directory on the remote, "" for its root; "/…" absolute
	// ConfigFile is the rclone.conf to read; empty: CredentialsEnv's RCLONE_CONFIG, then
	// RCLONE_CONFIG, then rclone's default locations.
	ConfigFile string
	// CredentialsEnv, when not empty, is the prefix of a named target's own variables
	// (DOCKER_BACKUP_TARGET_<NAME>): its _RCLONE_CONFIG is read first.
	CredentialsEnv string
}

// remoteName is what rclone accepts as a remote's name in its config file.
var remoteName = regexp.MustCompile(`^[\p{L}\p{N}_.+@ -]*[\p{L}\p{N}_.+@-]$`)

// ParseURL parses rclone:REMOTE:PATH. The remote must be one named in rclone.conf: rclone's
// on-the-fly forms (":drive,…:" or "remote,token=…:") could hold secrets and are refused
// unshown.
func ParseURL(s string) (Config, error) {
	rest, ok := strings.CutPrefix(s, "rclone:")
	if !ok {
		return Config{}, fmt.Errorf("target %q is not an rclone target: %s", s, Form)
	}
	remote, p, ok := strings.Cut(rest, ":")
	if strings.ContainsAny(remote, ",=") || strings.HasPrefix(rest, ":") {
		return Config{}, target.SecretInURL("target: an rclone target names a remote of rclone.conf (" + Form + "), not a connection string, which may hold credentials: the name is not shown")
	}
	if !ok || !remoteName.MatchString(remote) {
		return Config{}, fmt.Errorf("target %q: want %s, REMOTE a remote named in rclone.conf", s, Form)
	}
	// A path starting with "/" is absolute on the remote (SFTP, local), else under its root
	// (the login's home, a bucket, the drive).
	p = strings.TrimRight(p, "/")
	if rel := strings.TrimPrefix(p, "/"); rel != "" {
		if err := target.ValidateKey(rel); err != nil {
			return Config{}, fmt.Errorf("target %q: the path: %w", s, err)
		}
	}
	return Config{Remote: remote, Path: p}, nil
}

// String is the target's name: a remote's name and a path, no secret.
func (c Config) String() string { return "rclone:" + c.Remote + ":" + c.Path }
