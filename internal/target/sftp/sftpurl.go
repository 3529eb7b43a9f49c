package sftp

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Config describes a directory on an SSH server reached over SFTP. It never holds a secret:
// the key to log in with comes from a file, ssh-agent or ~/.ssh.
type Config struct {
	User string
	Host string // a host name or an IP address, without brackets
	Port int
	// Path is the directory the objects are kept in: relative to the login directory, or
	// absolute (sftp://USER@HOST//PATH); empty is the login directory itself.
	Path string
	// KeyFile is the private key to log in with; empty: the environment's
	// (CredentialsEnv_SFTP_KEY_FILE, then DOCKER_BACKUP_SFTP_KEY_FILE), else ssh-agent, else
	// ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
	KeyFile string
	// KnownHosts is the known_hosts file the server's host key must be in; empty: the
	// environment's (CredentialsEnv_SFTP_KNOWN_HOSTS, then DOCKER_BACKUP_SFTP_KNOWN_HOSTS),
	// else ~/.ssh/known_hosts.
	KnownHosts string
	// CredentialsEnv, when set, names an environment prefix read before DOCKER_BACKUP_SFTP_*:
	// PREFIX_SFTP_KEY_FILE and PREFIX_SFTP_KNOWN_HOSTS, so that each target has its own.
	CredentialsEnv string
}

// Environment variables of the SFTP target.
const (
	EnvSFTPKeyFile    = "DOCKER_BACKUP_SFTP_KEY_FILE"
	EnvSFTPKnownHosts = "DOCKER_BACKUP_SFTP_KNOWN_HOSTS"
)

// sftpForm is what an sftp:// URL looks like, for errors.
const sftpForm = "sftp://USER@HOST[:PORT]/PATH (PATH relative to the login directory, sftp://USER@HOST//PATH absolute)"

// ErrPasswordInURL refuses an sftp:// URL with a password in it (sftp://USER:PASSWORD@HOST): a
// URL is shown in errors, status and logs. The error never holds the URL.
var ErrPasswordInURL = target.SecretInURL("an sftp:// URL must not hold a password (USER:PASSWORD@; the URL is not shown): " +
	"the SFTP target logs in with a key, from the file " + EnvSFTPKeyFile + " names, ssh-agent or ~/.ssh")

// ParseURL reads sftp://USER@HOST[:PORT]/PATH: PATH relative to the login directory, or
// absolute when it starts with a second slash (sftp://USER@HOST//srv/backups), as restic
// writes it.
func ParseURL(raw string) (Config, error) {
	rest, ok := strings.CutPrefix(raw, "sftp://")
	if !ok {
		return Config{}, fmt.Errorf("target %q is not an sftp:// URL: %s", raw, sftpForm)
	}
	// The user part ends at the first "@". A ":" before it is a password, which may hold
	// anything ("/", "@"): refused before anything else is read, and never shown.
	user, hostPath, found := strings.Cut(rest, "@")
	if found && strings.Contains(user, ":") {
		return Config{}, ErrPasswordInURL
	}
	if !found || user == "" || strings.ContainsAny(user, "/?#") {
		return Config{}, fmt.Errorf("target %q names no user: %s", raw, sftpForm)
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return Config{}, fmt.Errorf("target %q contains a control character: %s", raw, sftpForm)
		}
	}
	if strings.ContainsAny(hostPath, "?#") {
		return Config{}, fmt.Errorf("target %q: an sftp:// URL takes no options (?...) or fragment (#...): %s", raw, sftpForm)
	}
	hostPort, p, _ := strings.Cut(hostPath, "/")
	cfg := Config{User: user, Port: 22}
	host, port := hostPort, ""
	if h, pt, err := net.SplitHostPort(hostPort); err == nil {
		host, port = h, pt
	} else if strings.HasPrefix(hostPort, "[") && strings.HasSuffix(hostPort, "]") {
		host = hostPort[1 : len(hostPort)-1] // an IPv6 address without a port
	}
	if host == "" || (strings.ContainsAny(host, "[]@: ") && net.ParseIP(host) == nil) {
		return Config{}, fmt.Errorf("target %q names no valid host: %s", raw, sftpForm)
	}
	cfg.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Config{}, fmt.Errorf("target %q: port %q must be a number from 1 to 65535: %s", raw, port, sftpForm)
		}
		cfg.Port = n
	}
	if abs, ok := strings.CutPrefix(p, "/"); ok {
		cfg.Path = path.Clean("/" + abs)
	} else if p != "" {
		cfg.Path = strings.TrimPrefix(path.Clean(p), "./")
		if cfg.Path == "." {
			cfg.Path = ""
		}
	}
	return cfg, nil
}

// address is HOST:PORT, as ssh and known_hosts name the server.
func (c Config) address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String is the URL, without the default port.
func (c Config) String() string {
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if c.Port != 22 {
		host = c.address()
	}
	u := "sftp://" + c.User + "@" + host
	if c.Path != "" {
		u += "/" + c.Path // an absolute path gives the second slash
	}
	return u
}
