// Package targets is the registry of the kinds of targets this build knows: Open makes one
// from what a user names (a directory or a URL), CheckURL checks a URL without connecting.
// Adding a kind of storage is a folder under internal/target and an entry in kinds.
package targets

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/webdav"
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
		gcsKind(),
		azureKind(),
		s3Kind(),
		rcloneKind(),
		sftpKind(),
		webdavKind(webdav.Scheme, "webdav://HOST[:PORT]/PATH[?ca=FILE]", []string{"WEBDAV_USERNAME", "WEBDAV_PASSWORD"}),
		webdavKind(webdav.SchemeHTTP, "webdav+http://HOST[:PORT]/PATH", nil), // webdav's settings
		smbKind(),
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

// URLs names the kinds' URLs for flag help and errors: "s3://, sftp:// or webdav:// URL".
func URLs() string {
	kinds := Kinds()
	var schemes []string
	for _, k := range kinds {
		if k.Opaque {
			schemes = append(schemes, k.Form)
			continue
		}
		schemes = append(schemes, k.Scheme+"://")
	}
	if len(schemes) == 1 {
		return schemes[0] + " URL"
	}
	return strings.Join(schemes[:len(schemes)-1], ", ") + " or " + schemes[len(schemes)-1] + " URL"
}

// Lookup returns the kind of a URL, by its scheme ("SCHEME://…", or "SCHEME:…" for an
// opaque kind).
func Lookup(spec string) (Kind, bool) {
	scheme, _, ok := strings.Cut(spec, ":")
	if !ok {
		return Kind{}, false
	}
	k, known := lookupScheme(scheme)
	if !known || (!k.Opaque && !strings.HasPrefix(spec, scheme+"://")) {
		return Kind{}, false
	}
	return k, true
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
// well formed, holding no secret. A URL that holds or may hold a secret is refused without
// being shown; so is what looks like a remote but is no URL (scp's USER@HOST:PATH), which
// would otherwise be taken for a local directory.
func CheckURL(spec string) error {
	if strings.TrimSpace(spec) == "" {
		return fmt.Errorf("no target given: pass a backup directory or a URL (%s), e.g. --to ./backups", Supported())
	}
	scheme, rest, isURL := strings.Cut(spec, "://")
	if !isURL {
		if k, ok := Lookup(spec); ok && k.Opaque {
			return k.Check(spec)
		}
		return checkPath(spec)
	}
	// A kind's own refusal of a secret says where its secrets go: it comes first.
	k, known := Lookup(spec)
	var kindErr error
	if known {
		if kindErr = k.Check(spec); errors.Is(kindErr, target.ErrSecretInURL) {
			return kindErr
		}
	}
	if err := checkSecrets(rest); err != nil {
		return err
	}
	switch {
	case known:
		return kindErr
	case scheme == "file" && !strings.HasPrefix(rest, "/"):
		return fmt.Errorf("a file:// URL names a directory of this host by its absolute path (file:///srv/backups); the URL is not shown")
	case scheme == "file":
		return nil
	}
	return fmt.Errorf("target: unsupported scheme %q; the URL is not shown (supported: %s)", scheme, Supported())
}

// checkSecrets refuses the parts of a URL (after its scheme) where users put secrets: a
// password in its user info (USER:PASSWORD@, also where the user name has an "@" in it), an
// option whose name says it is one (?secret_key=, ?password=, ?token=, ?sig=).
func checkSecrets(rest string) error {
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	if at := strings.LastIndex(authority, "@"); at >= 0 && strings.Contains(authority[:at], ":") {
		return target.SecretInURL("a target URL must not hold a password (USER:PASSWORD@; the URL is not shown): give it in the environment or a file, see docs/targets.md")
	}
	_, query, _ := strings.Cut(rest, "?")
	for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(kv, "=")
		if secretOption(name) {
			return target.SecretInURL(fmt.Sprintf("a target URL must not hold secrets in its options (%.40q; the URL is not shown): give them in the environment or a file, see docs/targets.md", name))
		}
	}
	return nil
}

// secretOption says whether a URL option's name is one that holds a secret.
func secretOption(name string) bool {
	n := strings.ToLower(name)
	if u, err := url.QueryUnescape(n); err == nil {
		n = u
	}
	n = strings.NewReplacer("-", "", "_", "", ".", "").Replace(n)
	switch n {
	case "sig", "key", "pass", "pw", "pwd", "auth", "sas", "sastoken":
		return true
	}
	for _, w := range []string{"secret", "password", "passwd", "token", "signature", "credential", "accesskey", "apikey", "keyid", "privatekey", "sharedkey", "accountkey"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// checkPath refuses a target without "://" that is no directory path but a remote written as
// scp, rsync or restic write them (USER@HOST:PATH, sftp:USER@HOST:PATH) or a URL missing its
// slashes (sftp:/HOST/PATH): taken as a directory, its backups would stay on this host.
func checkPath(spec string) error {
	if strings.HasPrefix(spec, "/") || strings.HasPrefix(spec, ".") {
		return nil
	}
	first, _, _ := strings.Cut(spec, "/")
	if scheme, _, ok := strings.Cut(first, ":"); ok {
		if k, known := lookupScheme(scheme); known || urlLike[strings.ToLower(scheme)] {
			form := scheme + "://…"
			if known {
				form = k.Form
			}
			return fmt.Errorf("target: %q is written as a URL without its \"//\"; the target is not shown: write %s (a directory whose name has a \":\" in it: ./NAME)", scheme+":", form)
		}
		if strings.Contains(first, "@") {
			return fmt.Errorf("target: an scp-style remote (USER@HOST:PATH; the target is not shown) is no target: write sftp://USER@HOST/PATH (PATH relative to the login directory) or sftp://USER@HOST//PATH (absolute); a directory whose name has \"@\" and \":\" in it: ./NAME")
		}
	}
	return nil
}

// urlLike are schemes users may write that no kind of target has.
var urlLike = map[string]bool{"ftp": true, "ftps": true, "http": true, "https": true, "ssh": true, "scp": true, "rsync": true, "file": true, "smb": true, "webdav": true, "azure": true, "gs": true, "b2": true, "rclone": true}

func lookupScheme(scheme string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Scheme == scheme {
			return k, true
		}
	}
	return Kind{}, false
}

// Settings lists the endings of every kind's named-target variables (see Kind.Settings).
func Settings() []string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Settings...)
	}
	return out
}
