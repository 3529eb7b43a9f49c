package smb

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Config describes a directory in a share on an SMB server (SMB2/3). It never holds a secret:
// the password comes from the environment.
type Config struct {
	Domain string // the user's domain or workgroup; empty: the server's own
	User   string
	Host   string // a host name or an IP address, without brackets
	Port   int
	Share  string
	// Path is the directory in the share the objects are kept in; empty is the share's root.
	Path string
	// CredentialsEnv, when set, names an environment prefix read before DOCKER_BACKUP_SMB_*:
	// PREFIX_SMB_PASSWORD (or PREFIX_SMB_PASSWORD_FILE), so that each target has its own.
	CredentialsEnv string
}

// EnvSMBPassword is the variable that holds the password (or, with _FILE, names its file).
const EnvSMBPassword = "DOCKER_BACKUP_SMB_PASSWORD"

// smbForm is what an smb:// URL looks like, for errors.
const smbForm = "smb://[DOMAIN;]USER@HOST[:PORT]/SHARE[/PATH]"

// ErrPasswordInURL refuses an smb:// URL with a password in it: a URL is shown in errors,
// status and logs. The error never holds the URL.
var ErrPasswordInURL = target.SecretInURL("an smb:// URL must not hold a password (USER:PASSWORD@; the URL is not shown): " +
	"the SMB target reads it from " + EnvSMBPassword + " or the file " + EnvSMBPassword + "_FILE names")

// ParseURL reads smb://[DOMAIN;]USER@HOST[:PORT]/SHARE[/PATH].
func ParseURL(raw string) (Config, error) {
	rest, ok := strings.CutPrefix(raw, "smb://")
	if !ok {
		return Config{}, fmt.Errorf("target %q is not an smb:// URL: %s", raw, smbForm)
	}
	// The user part ends at the first "@". A ":" before it is a password, which may hold
	// anything ("/", "@"): refused before anything else is read, and never shown.
	userinfo, hostPath, found := strings.Cut(rest, "@")
	if found && strings.Contains(userinfo, ":") {
		return Config{}, ErrPasswordInURL
	}
	userinfo, err := decodeUserinfo(userinfo)
	if err != nil {
		return Config{}, err
	}
	for _, r := range raw + userinfo {
		if r < 0x20 || r == 0x7f {
			return Config{}, fmt.Errorf("target %q contains a control character: %s", raw, smbForm)
		}
	}
	domain, user, hasDomain := strings.Cut(userinfo, ";")
	if !hasDomain {
		domain, user = "", userinfo
	}
	if !found || user == "" || strings.ContainsAny(userinfo, "/?#@\\") || (hasDomain && domain == "") {
		return Config{}, fmt.Errorf("target %q names no user: %s", raw, smbForm)
	}
	if strings.ContainsAny(hostPath, "?#\\") {
		return Config{}, fmt.Errorf("target %q: an smb:// URL takes no options (?...), fragment (#...) or backslashes: %s", raw, smbForm)
	}
	cfg := Config{Domain: domain, User: user, Port: 445}
	hostPort, p, _ := strings.Cut(hostPath, "/")
	if err := cfg.setHost(raw, hostPort); err != nil {
		return Config{}, err
	}
	share, dir, _ := strings.Cut(strings.Trim(path.Clean("/"+p), "/"), "/")
	if share == "" || strings.HasSuffix(share, "$") {
		return Config{}, fmt.Errorf("target %q names no share (administrative shares such as C$ are not taken): %s", raw, smbForm)
	}
	cfg.Share, cfg.Path = share, dir
	for _, part := range strings.Split(dir, "/") {
		if strings.HasPrefix(part, ".") {
			return Config{}, fmt.Errorf("target %q: the path must not name hidden directories (%q): %s", raw, part, smbForm)
		}
	}
	return cfg, nil
}

// decodeUserinfo percent-decodes the user part, as URL builders write it: a ":" it then
// holds (USER%3APASSWORD) is a password, refused like USER:PASSWORD. A part that does not
// decode is refused without the URL, as it may hold a password too.
func decodeUserinfo(userinfo string) (string, error) {
	dec, err := url.PathUnescape(userinfo)
	if err != nil {
		return "", fmt.Errorf("the user part of an smb:// URL is not valid percent-encoding (the URL is not shown): %s", smbForm)
	}
	if strings.Contains(dec, ":") {
		return "", ErrPasswordInURL
	}
	return dec, nil
}

// setHost reads HOST[:PORT] (an IPv6 address in brackets).
func (c *Config) setHost(raw, hostPort string) error {
	host, port := hostPort, ""
	if h, pt, err := net.SplitHostPort(hostPort); err == nil {
		host, port = h, pt
	} else if strings.HasPrefix(hostPort, "[") && strings.HasSuffix(hostPort, "]") {
		host = hostPort[1 : len(hostPort)-1]
	}
	if host == "" || (strings.ContainsAny(host, "[]@: ;") && net.ParseIP(host) == nil) {
		return fmt.Errorf("target %q names no valid host: %s", raw, smbForm)
	}
	c.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("target %q: port %q must be a number from 1 to 65535: %s", raw, port, smbForm)
		}
		c.Port = n
	}
	return nil
}

// address is HOST:PORT.
func (c Config) address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// account is the user as the server names it: DOMAIN\USER or USER.
func (c Config) account() string {
	if c.Domain != "" {
		return c.Domain + `\` + c.User
	}
	return c.User
}

// String is the URL, without the default port.
func (c Config) String() string {
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if c.Port != 445 {
		host = c.address()
	}
	u := "smb://"
	if c.Domain != "" {
		u += escapeUser(c.Domain) + ";"
	}
	u += escapeUser(c.User) + "@" + host + "/" + c.Share
	if c.Path != "" {
		u += "/" + c.Path
	}
	return u
}

// escapeUser writes a domain or user name as ParseURL reads it back: "%" (and the
// separators, should a name hold them) percent-encoded.
func escapeUser(s string) string {
	return strings.NewReplacer("%", "%25", ";", "%3B", "@", "%40", "/", "%2F").Replace(s)
}
