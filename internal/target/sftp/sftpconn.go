package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/docker-backup/docker-backup/internal/target"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	sftplib "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Bounds of an SFTP connection.
const (
	sftpDialTimeout = 30 * time.Second // the TCP connection
	// sftpHandshakeTimeout bounds the SSH handshake, the login and the start of SFTP.
	sftpHandshakeTimeout = 30 * time.Second
	// A connection whose server does not answer a keepalive for sftpKeepaliveTimeout is
	// closed: every request waiting on it fails instead of hanging.
	sftpKeepaliveInterval = 15 * time.Second
	sftpKeepaliveTimeout  = 30 * time.Second
	// sftpIdleTimeout closes a connection nothing used for that long (a sidecar between runs).
	sftpIdleTimeout = time.Minute
	// sftpDialAttempts is how often an unreachable server is tried, with a growing pause.
	sftpDialAttempts = 3
)

// Errors wrapped when the server's host key is refused.
var (
	ErrHostKeyUnknown = errors.New("the server's host key is not known")
	ErrHostKeyChanged = errors.New("the server's host key has CHANGED")
	ErrHostKeyRevoked = errors.New("the server's host key is revoked")
)

// sftpConn is one SSH connection and its SFTP session, shared by the target's operations.
type sftpConn struct {
	ssh    *ssh.Client
	client *sftplib.Client
	users  int         // operations and open readers using it; guarded by SFTP.mu
	idle   *time.Timer // closes it once unused; guarded by SFTP.mu
	closed chan struct{}
}

func (c *sftpConn) close() {
	c.client.Close()
	c.ssh.Close()
}

// acquire returns the target's connection, dialling one if there is none (or it broke). Every
// acquire is followed by a release. One dial runs at a time; releases do not wait for it.
func (s *Target) acquire(ctx context.Context) (*sftpConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c := s.take(); c != nil {
		return c, nil
	}
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	if c := s.take(); c != nil { // dialled meanwhile
		return c, nil
	}
	c, err := s.dialRetrying(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.users = 1
	s.conn = c
	return c, nil
}

// take returns the current connection, one more use counted, or nil if there is none alive.
func (s *Target) take() *sftpConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil {
		return nil
	}
	select {
	case <-c.closed:
		s.conn = nil
		return nil
	default:
	}
	c.users++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
	return c
}

// release ends one use of c; the last one closes it after sftpIdleTimeout.
func (s *Target) release(c *sftpConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.users--
	if c.users > 0 {
		return
	}
	if s.conn != c { // dropped: broken
		c.close()
		return
	}
	c.idle = time.AfterFunc(sftpIdleTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == c && c.users == 0 {
			s.conn = nil
			c.close()
		}
	})
}

// drop stops handing out c: it lost its connection.
func (s *Target) drop(c *sftpConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.conn = nil
	}
	c.ssh.Close()
}

// Close closes the target's connection, if it has one. The target can be used again.
func (s *Target) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conn; c != nil {
		s.conn = nil
		if c.idle != nil {
			c.idle.Stop()
		}
		c.close()
	}
	return nil
}

// with runs f on a connection. A connection that turns out to be lost (the server restarted,
// a NAT forgot it) is replaced and f run once more: f must be safe to repeat.
func (s *Target) with(ctx context.Context, f func(*sftplib.Client) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		err = f(c.client)
		if lostConnection(err) {
			s.drop(c)
		}
		s.release(c)
		if attempt == 0 && lostConnection(err) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// lostConnection tells the errors of a connection that ended.
func lostConnection(err error) bool {
	return err != nil && (errors.Is(err, sftplib.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// errNetwork marks a dial's failure to reach the server (worth another try).
type errNetwork struct{ err error }

func (e errNetwork) Error() string { return e.err.Error() }
func (e errNetwork) Unwrap() error { return e.err }

// dialRetrying dials, trying again while the server cannot be reached.
func (s *Target) dialRetrying(ctx context.Context) (*sftpConn, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		c, err := s.dial(ctx)
		var netErr errNetwork
		if err == nil || !errors.As(err, &netErr) || attempt == sftpDialAttempts {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// dial connects, checks the host key, logs in and starts SFTP, each within its timeout.
func (s *Target) dial(ctx context.Context) (*sftpConn, error) {
	addr := s.cfg.address()
	hk, err := s.hostKeys()
	if err != nil {
		return nil, err
	}
	auth, err := s.authMethods()
	if err != nil {
		return nil, err
	}
	defer auth.close()
	config := &ssh.ClientConfig{
		User:              s.cfg.User,
		Auth:              auth.methods,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(addr),
	}
	d := net.Dialer{Timeout: sftpDialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errNetwork{fmt.Errorf("cannot reach the SFTP server %s: %w", addr, err)}
	}
	_ = nc.SetDeadline(time.Now().Add(sftpHandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, config)
	if err != nil {
		nc.Close()
		switch {
		case hk.err != nil:
			return nil, hk.err
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, fmt.Errorf("%s: %w: %s holds only keys of the types %s for it, and the server offers none of them; refused before anything was sent (someone may be intercepting the connection). "+
				"If the server's keys were replaced on purpose, remove the old ones (`ssh-keygen -R %s -f %s`) and add the new ones (`%s`): %w",
				addr, ErrHostKeyChanged, hk.file, strings.Join(config.HostKeyAlgorithms, ", "), shellQuote(knownhosts.Normalize(addr)), hk.file, hk.keyscan(addr), err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("authentication failed: %s refused to log in %q with %s: the user's authorized_keys on the server must hold its public key (%w)",
				addr, s.cfg.User, auth.source, err)
		}
		return nil, errNetwork{fmt.Errorf("the SSH handshake with %s failed (network or not an SSH server): %w", addr, err)}
	}
	client := ssh.NewClient(conn, chans, reqs)
	sc, err := sftplib.NewClient(client, sftplib.UseConcurrentWrites(true))
	if err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s does not start SFTP for %q (is its sftp subsystem enabled, or is the user limited to a shell?): %w", addr, s.cfg.User, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &sftpConn{ssh: client, client: sc, closed: make(chan struct{})}
	go func() {
		_ = sc.Wait() // the SFTP session ended (its server process died): the connection is of no more use
		client.Close()
	}()
	go func() {
		_ = client.Wait()
		close(c.closed)
	}()
	go c.keepalive()
	return c, nil
}

// keepalive closes the connection when the server stops answering.
func (c *sftpConn) keepalive() {
	t := time.NewTicker(sftpKeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				c.ssh.Close()
				return
			}
		case <-time.After(sftpKeepaliveTimeout):
			c.ssh.Close()
			return
		case <-c.closed:
			return
		}
	}
}

// sftpAuth is how a dial logs in, and what to call it in errors.
type sftpAuth struct {
	methods []ssh.AuthMethod
	source  string
	close   func()
}

// authMethods picks the key to log in with: the key file the environment names, else
// ssh-agent's keys, else ~/.ssh/id_ed25519, id_ecdsa and id_rsa.
func (s *Target) authMethods() (sftpAuth, error) {
	none := func() {}
	if s.keyFile != "" {
		signer, err := readSSHKey(s.keyFile)
		if err != nil {
			return sftpAuth{}, fmt.Errorf("%s: %w", s.keySource, err)
		}
		return sftpAuth{[]ssh.AuthMethod{ssh.PublicKeys(signer)}, s.keySource, none}, nil
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if ac, err := net.DialTimeout("unix", sock, 5*time.Second); err == nil {
			signers, err := agent.NewClient(ac).Signers()
			if err == nil && len(signers) > 0 {
				return sftpAuth{[]ssh.AuthMethod{ssh.PublicKeys(signers...)}, "ssh-agent's keys (SSH_AUTH_SOCK)", func() { ac.Close() }}, nil
			}
			ac.Close()
		}
	}
	home, _ := os.UserHomeDir()
	var signers []ssh.Signer
	var names, skipped []string
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		file := filepath.Join(home, ".ssh", name)
		signer, err := readSSHKey(file)
		switch {
		case err == nil:
			signers = append(signers, signer)
			names = append(names, "~/.ssh/"+name)
		case !errors.Is(err, fs.ErrNotExist):
			skipped = append(skipped, "~/.ssh/"+name+": "+err.Error())
		}
	}
	if len(signers) == 0 {
		msg := "no SSH key to log in with: set " + EnvSFTPKeyFile + " to a private key file, or load a key into ssh-agent (SSH_AUTH_SOCK), or make ~/.ssh/id_ed25519"
		if len(skipped) > 0 {
			msg += " (skipped " + strings.Join(skipped, "; ") + ")"
		}
		return sftpAuth{}, errors.New(msg)
	}
	return sftpAuth{[]ssh.AuthMethod{ssh.PublicKeys(signers...)}, strings.Join(names, ", "), none}, nil
}

// readSSHKey reads a private key file; one protected by a passphrase is refused (nobody is
// there to type it).
func readSSHKey(file string) (ssh.Signer, error) {
	if strings.ContainsAny(file, "\n\r") || strings.Contains(file, "PRIVATE KEY") {
		return nil, fmt.Errorf("the key file's name holds a key itself (not shown): give the name of the file the private key is in")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the key file: %w", target.Unnamed(err))
	}
	signer, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("the key in %s is protected by a passphrase: load it into ssh-agent instead, or use a key without one", file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s holds no private key ssh can read: %w", file, err)
	}
	return signer, nil
}

// hostKeyCheck checks the server's host key against the known hosts file, and keeps why it
// refused one (the handshake's own error does not say).
type hostKeyCheck struct {
	file   string
	exists bool
	db     ssh.HostKeyCallback
	err    error
}

// hostKeys reads the known hosts file anew at each dial: a key added meanwhile counts.
func (s *Target) hostKeys() (*hostKeyCheck, error) {
	h := &hostKeyCheck{file: s.knownHosts}
	var files []string
	if _, err := os.Stat(h.file); err == nil {
		files, h.exists = []string{h.file}, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the known hosts file %s: %w", h.file, err)
	}
	db, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("reading the known hosts file %s: %w", h.file, err)
	}
	h.db = db
	return h, nil
}

// algorithms are the host key algorithms of the keys known for addr, so that the server is
// asked for a key that can be checked rather than one of a type the file does not hold.
func (h *hostKeyCheck) algorithms(addr string) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(h.db(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

func (h *hostKeyCheck) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.db(hostname, remote, key)
	if err == nil {
		return nil
	}
	offered := key.Type() + " " + ssh.FingerprintSHA256(key)
	scan := h.keyscan(hostname)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		h.err = fmt.Errorf("%s: %w (%s:%d marks it @revoked): it offered %s; refused before anything was sent",
			hostname, ErrHostKeyRevoked, re.Revoked.Filename, re.Revoked.Line, offered)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		where := "not in " + h.file
		if !h.exists {
			where = h.file + " does not exist; " + EnvSFTPKnownHosts + " names the file to use"
		}
		h.err = fmt.Errorf("%s: %w (%s): it offered %s; refused before anything was sent. "+
			"If that is the server's key (compare the fingerprint with the one its administrator shows), add it: `%s`, or add the line `%s` to %s",
			hostname, ErrHostKeyUnknown, where, offered, scan, knownhosts.Line([]string{hostname}, key), h.file)
	case errors.As(err, &ke):
		want := ke.Want[0]
		h.err = fmt.Errorf("%s: %w: it offered %s, but %s:%d holds %s %s for it; refused before anything was sent (someone may be intercepting the connection). "+
			"If the server's key was replaced on purpose, remove the old one (`ssh-keygen -R %s -f %s`) and add the new one (`%s`)",
			hostname, ErrHostKeyChanged, offered, want.Filename, want.Line, want.Key.Type(), ssh.FingerprintSHA256(want.Key),
			shellQuote(knownhosts.Normalize(hostname)), want.Filename, scan)
	default:
		h.err = fmt.Errorf("%s: checking the host key against %s: %w", hostname, h.file, err)
	}
	return h.err
}

// keyscan is the command that adds the host keys of addr (HOST:PORT) to the file.
func (h *hostKeyCheck) keyscan(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if port == "22" {
		return "ssh-keyscan " + host + " >> " + h.file
	}
	return "ssh-keyscan -p " + port + " " + host + " >> " + h.file
}

// shellQuote quotes s for a shell when it needs it ([host]:port does).
func shellQuote(s string) string {
	if strings.ContainsAny(s, "[]*? '\"$") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
