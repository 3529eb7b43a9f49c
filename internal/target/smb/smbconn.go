package smb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	smb2 "github.com/hirochachacha/go-smb2"
)

// Bounds of an SMB connection.
const (
	smbDialTimeout = 30 * time.Second // the TCP connection
	// smbHandshakeTimeout bounds the negotiation, the login and the share's tree connect.
	smbHandshakeTimeout = 30 * time.Second
	// smbWriteTimeout bounds one write to the socket: a server that stops reading for that
	// long is taken as gone, and the connection closed (every request on it then fails).
	smbWriteTimeout = time.Minute
	// smbRequestTimeout bounds one metadata request (open, stat, rename, list, remove).
	smbRequestTimeout = time.Minute
	// smbIdleTimeout closes a connection nothing used for that long (a sidecar between runs).
	smbIdleTimeout = time.Minute
	// smbDialAttempts is how often an unreachable server is tried, with a growing pause.
	smbDialAttempts = 3
)

// NTSTATUS codes the target tells apart ([MS-ERREF] 2.3.1).
const (
	statusLogonFailure       = 0xC000006D
	statusAccountRestriction = 0xC000006E
	statusPasswordExpired    = 0xC0000071
	statusAccountDisabled    = 0xC0000072
	statusAccountLockedOut   = 0xC0000234
	statusPasswordMustChange = 0xC0000224
	statusDiskFull           = 0xC000007F
	statusQuotaExceeded      = 0xC0000044
	statusSharingViolation   = 0xC0000043
	statusBadNetworkName     = 0xC00000CC
	statusSessionDeleted     = 0xC0000203
	statusSessionExpired     = 0xC000035C
	statusNetworkNameDeleted = 0xC00000C9
	statusFileClosed         = 0xC0000128
)

// ErrAuthentication is wrapped when the server refuses the user's name or password.
var ErrAuthentication = errors.New("authentication failed")

// smbConn is one TCP connection, its SMB session and the share's tree connect, shared by the
// target's operations.
type smbConn struct {
	nc      net.Conn
	session *smb2.Session
	share   *smb2.Share
	users   int         // operations and open readers using it; guarded by Target.mu
	idle    *time.Timer // closes it once unused; guarded by Target.mu
}

// close ends the session politely, within a few seconds, and closes the socket.
func (c *smbConn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.share.WithContext(ctx).Umount()
	_ = c.session.WithContext(ctx).Logoff()
	c.nc.Close()
}

// acquire returns the target's connection, dialling one if there is none (or it broke). Every
// acquire is followed by a release.
func (s *Target) acquire(ctx context.Context) (*smbConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c := s.take(); c != nil {
		return c, nil
	}
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	if c := s.take(); c != nil {
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

// take returns the current connection, one more use counted, or nil if there is none.
func (s *Target) take() *smbConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil {
		return nil
	}
	c.users++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
	return c
}

// release ends one use of c; the last one closes it after smbIdleTimeout.
func (s *Target) release(c *smbConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.users--
	if c.users > 0 {
		return
	}
	if s.conn != c {
		go c.close()
		return
	}
	c.idle = time.AfterFunc(smbIdleTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == c && c.users == 0 {
			s.conn = nil
			go c.close()
		}
	})
}

// drop stops handing out c: its connection or session was lost.
func (s *Target) drop(c *smbConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.conn = nil
	}
	c.nc.Close()
}

// Close closes the target's connection, if it has one. The target can be used again.
func (s *Target) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	if c != nil && c.idle != nil {
		c.idle.Stop()
	}
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// with runs f on the share, each request within smbRequestTimeout. A connection that turns
// out to be lost (the server restarted, the session expired) is replaced and f run once
// more: f must be safe to repeat.
func (s *Target) with(ctx context.Context, f func(*smb2.Share) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.acquire(ctx)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, smbRequestTimeout)
		err = f(c.share.WithContext(rctx))
		cancel()
		lost := lostConnection(err)
		if lost {
			s.drop(c)
		}
		s.release(c)
		if attempt == 0 && lost && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// lostConnection tells the errors of a connection or session that ended.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	var te *smb2.TransportError
	switch code := ntStatus(err); {
	case errors.As(err, &te), code == statusSessionDeleted, code == statusSessionExpired,
		code == statusNetworkNameDeleted:
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) ||
		strings.Contains(err.Error(), "use of closed network connection")
}

// ntStatus is the NTSTATUS of a server's error response, 0 if err is none.
func ntStatus(err error) uint32 {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// errNetwork marks a dial's failure to reach the server (worth another try).
type errNetwork struct{ err error }

func (e errNetwork) Error() string { return e.err.Error() }
func (e errNetwork) Unwrap() error { return e.err }

// dialRetrying dials, trying again while the server cannot be reached.
func (s *Target) dialRetrying(ctx context.Context) (*smbConn, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		c, err := s.dial(ctx)
		var netErr errNetwork
		if err == nil || !errors.As(err, &netErr) || attempt == smbDialAttempts {
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

// dial connects, negotiates SMB2/3 (signing and encryption as the server requires), logs
// in with NTLM and connects to the share, each within its timeout.
func (s *Target) dial(ctx context.Context) (*smbConn, error) {
	password, err := s.password()
	if err != nil {
		return nil, err
	}
	addr := s.cfg.address()
	d := net.Dialer{Timeout: smbDialTimeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 4}}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errNetwork{fmt.Errorf("cannot reach the SMB server %s: %w", addr, err)}
	}
	nc := &deadlineConn{Conn: raw}
	hctx, cancel := context.WithTimeout(ctx, smbHandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(hctx, func() { nc.Close() })
	defer stop()
	dialer := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.cfg.User, Password: password, Domain: s.cfg.Domain}}
	session, err := dialer.DialContext(hctx, nc)
	if err != nil {
		nc.Close()
		return nil, s.explainDial(ctx, err)
	}
	share, err := session.WithContext(hctx).Mount(s.cfg.Share)
	if err != nil {
		_ = session.WithContext(hctx).Logoff()
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ntStatus(err) == statusBadNetworkName {
			return nil, fmt.Errorf("%s has no share named %q (or does not show it to %q): %w", addr, s.cfg.Share, s.cfg.account(), err)
		}
		return nil, fmt.Errorf("connecting to the share %q on %s: %w", s.cfg.Share, addr, s.explain(err))
	}
	return &smbConn{nc: nc, session: session, share: share}, nil
}

// explainDial says why a negotiation or login failed: the credentials, or the network.
func (s *Target) explainDial(ctx context.Context, err error) error {
	addr := s.cfg.address()
	switch ntStatus(err) {
	case statusLogonFailure:
		return fmt.Errorf("%w: %s refused to log in %q: wrong user name or password (%s)", ErrAuthentication, addr, s.cfg.account(), s.passwordSource())
	case statusAccountRestriction, statusAccountDisabled, statusAccountLockedOut, statusPasswordExpired, statusPasswordMustChange:
		return fmt.Errorf("%w: %s refused to log in %q: the account is disabled, locked or its password expired: %w", ErrAuthentication, addr, s.cfg.account(), err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if lostConnection(err) || timedOut(err) {
		return errNetwork{fmt.Errorf("the SMB handshake with %s failed (network, or not an SMB2/3 server): %w", addr, err)}
	}
	return fmt.Errorf("the SMB handshake with %s failed (does it speak SMB2 or SMB3?): %w", addr, err)
}

// deadlineConn bounds each write to the socket (a server that stops reading).
type deadlineConn struct{ net.Conn }

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(smbWriteTimeout))
	return c.Conn.Write(p)
}

// password reads the user's password from the target's own variable, else the common one.
func (s *Target) password() (string, error) {
	for _, name := range s.passwordVars() {
		v, err := target.EnvOrFile(name)
		if err != nil {
			return "", err
		}
		if v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("no password for %q on %s: set %s (or %s_FILE to a file holding it)", s.cfg.account(), s.cfg.address(), s.passwordVars()[0], s.passwordVars()[0])
}

// passwordVars are the variables the password is read from, in order.
func (s *Target) passwordVars() []string {
	var vars []string
	if s.cfg.CredentialsEnv != "" {
		vars = append(vars, s.cfg.CredentialsEnv+"_SMB_PASSWORD")
	}
	return append(vars, EnvSMBPassword)
}

// passwordSource names where the password was read, for messages (never the password).
func (s *Target) passwordSource() string {
	for _, name := range s.passwordVars() {
		if os.Getenv(name) != "" {
			return "the password in " + name
		}
		if os.Getenv(name+"_FILE") != "" {
			return "the password in the file " + name + "_FILE names"
		}
	}
	return "no password"
}
