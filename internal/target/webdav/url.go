package webdav

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Config describes a collection on a WebDAV server. It never holds a secret: the user and
// password come from the environment.
type Config struct {
	Host   string // HOST[:PORT], as in the URL
	Secure bool   // https (webdav://) or cleartext http (webdav+http://)
	// Path is the collection the objects are kept in, unescaped, without a trailing slash
	// ("/remote.php/dav/files/alice/backups"); empty is the server's root.
	Path   string
	CAFile string // an extra CA bundle for the server's certificate (?ca=FILE)
	// CredentialsEnv, when set, names an environment prefix read before DOCKER_BACKUP_WEBDAV_*:
	// PREFIX_WEBDAV_USERNAME and PREFIX_WEBDAV_PASSWORD (or its _FILE form).
	CredentialsEnv string
}

// Environment variables of the WebDAV target.
const (
	EnvUsername = "DOCKER_BACKUP_WEBDAV_USERNAME"
	EnvPassword = "DOCKER_BACKUP_WEBDAV_PASSWORD"
)

// Schemes of the WebDAV target's URLs: https, and cleartext http only when named so.
const (
	Scheme     = "webdav"
	SchemeHTTP = "webdav+http"
)

// form is what a WebDAV URL looks like, for errors.
const form = "webdav://HOST[:PORT]/PATH[?ca=FILE] (https) or webdav+http://HOST[:PORT]/PATH (cleartext)"

// ErrCredentialsInURL refuses a WebDAV URL with a user or password in it: a URL is shown in
// errors, status and logs. The error never holds the URL.
var ErrCredentialsInURL = target.SecretInURL("a webdav:// URL must not hold a user or password (USER:PASSWORD@; the URL is not shown): " +
	"give them in " + EnvUsername + " and " + EnvPassword + " (or " + EnvPassword + "_FILE)")

// ParseURL reads webdav://HOST[:PORT]/PATH[?ca=FILE] or webdav+http://HOST[:PORT]/PATH.
func ParseURL(raw string) (Config, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	if scheme != Scheme && scheme != SchemeHTTP {
		return Config{}, fmt.Errorf("target %q is not a WebDAV URL: %s", raw, form)
	}
	// Anything before an "@" in the authority may be a password: refused unseen.
	authority, _, _ := strings.Cut(rest, "/")
	if strings.Contains(authority, "@") {
		return Config{}, ErrCredentialsInURL
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return Config{}, fmt.Errorf("target %q contains a control character: %s", raw, form)
		}
	}
	u, err := url.Parse("http://" + rest)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return Config{}, fmt.Errorf("target %q is not a valid WebDAV URL: %s", raw, form)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Config{}, fmt.Errorf("target %q: port %q must be a number from 1 to 65535: %s", raw, p, form)
		}
	}
	if h := u.Hostname(); h == "" || (strings.ContainsAny(h, ":[]") && net.ParseIP(h) == nil) {
		return Config{}, fmt.Errorf("target %q names no valid host: %s", raw, form)
	}
	cfg := Config{Host: u.Host, Secure: scheme == Scheme, Path: strings.TrimSuffix(path.Clean("/"+u.Path), "/")}
	for k := range u.Query() {
		if k != "ca" {
			return Config{}, fmt.Errorf("target %q: unknown option %q (known: ca): %s", raw, k, form)
		}
	}
	cfg.CAFile = u.Query().Get("ca")
	if cfg.CAFile != "" && !cfg.Secure {
		return Config{}, fmt.Errorf("target %q: ?ca= is for https (webdav://), not cleartext webdav+http://", raw)
	}
	return cfg, nil
}

// String is the URL, without the CA option.
func (c Config) String() string {
	scheme := Scheme
	if !c.Secure {
		scheme = SchemeHTTP
	}
	return scheme + "://" + c.Host + (&url.URL{Path: c.Path}).EscapedPath()
}

// base is the collection's URL, ending in a slash.
func (c Config) base() *url.URL {
	scheme := "https"
	if !c.Secure {
		scheme = "http"
	}
	return &url.URL{Scheme: scheme, Host: c.Host, Path: c.Path + "/"}
}
