// Package targets is the registry of the kinds of targets this build knows: Open makes one
// from what a user names (a directory or a URL), CheckURL checks a URL without connecting.
// Adding a kind of storage is a folder under internal/target and an entry in kinds.
package targets

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/rclone"
	"github.com/docker-backup/docker-backup/internal/target/s3"
	"github.com/docker-backup/docker-backup/internal/target/sftp"
)

// Kind is one kind of target, named by its URL scheme.
type Kind struct {
	Scheme string // "s3", the URL's scheme
	// Opaque kinds are named "SCHEME:…" rather than "SCHEME://…" (rclone:REMOTE:PATH).
	Opaque bool
	Form   string // what its URL looks like, for help and errors
	// Settings end the names of a named target's own variables in the sidecar
	// (DOCKER_BACKUP_TARGET_<NAME>_<SETTING>): its credentials and files.
	Settings []string
	// Secrets says where this kind's secrets go instead of the URL, for a named target whose
	// variables start with prefix ("" for the plugin's and the default target's).
	Secrets func(prefix string) string
	// Check checks a URL of this kind without connecting (its form, no secret in it).
	Check func(url string) error
	// Open makes a target of a URL of this kind; settingsEnv, when not empty, is the prefix of
	// the target's own variables, read before the kind's common ones.
	Open func(url, settingsEnv string) (target.Target, error)
}

// Kinds lists the kinds of remote targets this build knows, by scheme (a directory, or a
// file:// URL, is always known).
func Kinds() []Kind {
	kinds := []Kind{
		{
			Scheme:   "s3",
			Form:     "s3://BUCKET[/PREFIX][?endpoint=HOST[:PORT]&region=…]",
			Settings: []string{"ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"},
			Secrets: func(p string) string {
				return p + "ACCESS_KEY_ID and " + p + "SECRET_ACCESS_KEY, or their _FILE forms"
			},
			Check: func(url string) error { _, err := s3.ParseURL(url); return err },
			Open: func(url, env string) (target.Target, error) {
				cfg, err := s3.ParseURL(url)
				if err != nil {
					return nil, err
				}
				cfg.CredentialsEnv = env
				return s3.New(cfg)
			},
		},
		{
			Scheme:   "rclone",
			Opaque:   true,
			Form:     rclone.Form,
			Settings: []string{rclone.EnvConfig},
			Secrets: func(p string) string {
				if p == "" {
					return "the remote's section of rclone.conf (" + rclone.EnvConfig + ")"
				}
				return "the remote's section of the rclone.conf " + p + rclone.EnvConfig + " names"
			},
			Check: func(url string) error { _, err := rclone.ParseURL(url); return err },
			Open: func(url, env string) (target.Target, error) {
				cfg, err := rclone.ParseURL(url)
				if err != nil {
					return nil, err
				}
				cfg.CredentialsEnv = env
				return rclone.New(context.Background(), cfg)
			},
		},
		{
			Scheme:   "sftp",
			Form:     "sftp://USER@HOST[:PORT]/PATH",
			Settings: []string{"SFTP_KEY_FILE", "SFTP_KNOWN_HOSTS"},
			Secrets:  func(p string) string { return "the key file " + p + "SFTP_KEY_FILE names" },
			Check:    func(url string) error { _, err := sftp.ParseURL(url); return err },
			Open: func(url, env string) (target.Target, error) {
				cfg, err := sftp.ParseURL(url)
				if err != nil {
					return nil, err
				}
				cfg.CredentialsEnv = env
				return sftp.New(cfg)
			},
		},
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Scheme < kinds[j].Scheme })
	return kinds
}

// Supported names what can be a target, for errors and help.
func Supported() string {
	forms := []string{"a directory path", "file://PATH"}
	for _, k := range Kinds() {
		forms = append(forms, k.Form)
	}
	return strings.Join(forms, ", ")
}

// Lookup returns the kind of a URL, by its scheme ("SCHEME://…", or "SCHEME:…" for an
// opaque kind).
func Lookup(url string) (Kind, bool) {
	scheme, _, ok := strings.Cut(url, ":")
	if !ok {
		return Kind{}, false
	}
	hier := strings.HasPrefix(url, scheme+"://")
	for _, k := range Kinds() {
		if k.Scheme == scheme && (hier || k.Opaque) {
			return k, true
		}
	}
	return Kind{}, false
}

// IsURL says whether spec names a remote target of a kind this build knows (rather than a
// directory).
func IsURL(spec string) bool {
	_, ok := Lookup(spec)
	return ok
}

// Open returns the target a user names: a directory path (or file:// URL) for a local
// target, else a URL of one of Kinds.
func Open(spec string) (target.Target, error) { return OpenWith(spec, "") }

// OpenWith is Open with the prefix of a named target's own variables (see Kind.Open).
func OpenWith(spec, settingsEnv string) (target.Target, error) {
	if err := CheckURL(spec); err != nil {
		return nil, err
	}
	if k, ok := Lookup(spec); ok {
		return k.Open(spec, settingsEnv)
	}
	return target.NewLocal(strings.TrimPrefix(spec, "file://"))
}

// CheckURL checks what names a target without connecting: its kind is known and its URL
// well formed, holding no secret. An unknown scheme's URL is not shown when it may hold
// credentials.
func CheckURL(spec string) error {
	switch {
	case strings.TrimSpace(spec) == "":
		return fmt.Errorf("no target given: pass a backup directory or a URL (%s), e.g. --to ./backups", Supported())
	case strings.HasPrefix(spec, "file://"):
		return nil
	case !strings.Contains(spec, "://"):
		if k, ok := Lookup(spec); ok && k.Opaque {
			return k.Check(spec)
		}
	case strings.Contains(spec, "://"):
		if k, ok := Lookup(spec); ok {
			return k.Check(spec)
		}
		scheme, _, _ := strings.Cut(spec, "://")
		if strings.Contains(spec, "@") {
			return target.SecretInURL(fmt.Sprintf("target: unsupported scheme %q; the URL is not shown, as it may hold credentials (supported: %s)", scheme, Supported()))
		}
		return fmt.Errorf("target %q: unsupported scheme %q (supported: %s)", spec, scheme, Supported())
	}
	return nil
}

// Settings lists the endings of every kind's named-target variables (see Kind.Settings).
func Settings() []string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Settings...)
	}
	return out
}
