package sftp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"

	sftplib "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestParseSFTPURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want Config
		str  string
	}{
		{"sftp://backup@nas/backups", Config{User: "backup", Host: "nas", Port: 22, Path: "backups"}, "sftp://backup@nas/backups"},
		{"sftp://backup@nas:2222/backups/host1/", Config{User: "backup", Host: "nas", Port: 2222, Path: "backups/host1"}, "sftp://backup@nas:2222/backups/host1"},
		{"sftp://backup@nas//srv/backups", Config{User: "backup", Host: "nas", Port: 22, Path: "/srv/backups"}, "sftp://backup@nas//srv/backups"},
		{"sftp://u123@u123.your-storagebox.de:23/./a//b", Config{User: "u123", Host: "u123.your-storagebox.de", Port: 23, Path: "a/b"}, "sftp://u123@u123.your-storagebox.de:23/a/b"},
		{"sftp://backup@nas", Config{User: "backup", Host: "nas", Port: 22}, "sftp://backup@nas"},
		{"sftp://backup@nas/", Config{User: "backup", Host: "nas", Port: 22}, "sftp://backup@nas"},
		{"sftp://backup@nas//", Config{User: "backup", Host: "nas", Port: 22, Path: "/"}, "sftp://backup@nas//"},
		{"sftp://backup@[::1]:2222/b", Config{User: "backup", Host: "::1", Port: 2222, Path: "b"}, "sftp://backup@[::1]:2222/b"},
		{"sftp://backup@[fd00::5]/b", Config{User: "backup", Host: "fd00::5", Port: 22, Path: "b"}, "sftp://backup@[fd00::5]/b"},
		{"sftp://backup@10.0.0.5:22/b", Config{User: "backup", Host: "10.0.0.5", Port: 22, Path: "b"}, "sftp://backup@10.0.0.5/b"},
	} {
		got, err := ParseURL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.url, got, c.want)
		}
		if s := got.String(); s != c.str {
			t.Errorf("%s: String() = %q, want %q", c.url, s, c.str)
		}
	}
}

func TestParseSFTPURLRefuses(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"sftp://nas/backups", "names no user"},
		{"sftp://@nas/backups", "names no user"},
		{"sftp://nas/backups@2024", "names no user"},
		{"sftp://backup@/backups", "names no valid host"},
		{"sftp://backup@nas:0/b", `port "0" must be a number from 1 to 65535`},
		{"sftp://backup@nas:99999/b", `port "99999" must be a number from 1 to 65535`},
		{"sftp://backup@nas:ssh/b", `port "ssh" must be`},
		{"sftp://backup@nas/b?port=2", "takes no options"},
		{"sftp://backup@nas/b#x", "takes no options"},
		{"sftp://backup@n as/b", "names no valid host"},
		{"sftp://backup@nas/b\nc", "control character"},
	} {
		_, err := ParseURL(c.url)
		if err == nil {
			t.Errorf("%q: accepted", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.url)) || !strings.Contains(err.Error(), "sftp://USER@HOST[:PORT]/PATH") {
			t.Errorf("%q: error %q should name the URL, say %q and show the form", c.url, err, c.want)
		}
	}
	// A password is refused without the URL: it may hold anything.
	for _, u := range []string{"sftp://backup:s3cr/et@nas/b", "sftp://backup:s3cret@nas/b"} {
		_, err := ParseURL(u)
		if !errors.Is(err, ErrPasswordInURL) || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestSFTPEnvironment(t *testing.T) {
	t.Setenv(EnvSFTPKeyFile, "/global/key")
	t.Setenv(EnvSFTPKnownHosts, "/global/known_hosts")
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_SFTP_KEY_FILE", "/offsite/key")
	cfg, err := ParseURL("sftp://u@h/p")
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "DOCKER_BACKUP_TARGET_OFFSITE"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.keyFile != "/offsite/key" || s.keySource != "the key file DOCKER_BACKUP_TARGET_OFFSITE_SFTP_KEY_FILE names" || s.knownHosts != "/global/known_hosts" {
		t.Errorf("key %s (%s), known hosts %s", s.keyFile, s.keySource, s.knownHosts)
	}
	if strings.Contains(s.String(), "key") {
		t.Errorf("String() shows the key: %s", s)
	}
}

// sshServer is an SSH server in the test process serving SFTP from a directory (pkg/sftp's
// server). The end-to-end tests use OpenSSH's; this one checks the client's side quickly.
type sshServer struct {
	addr     string
	dir      string
	hostKey  ssh.Signer
	clientOK ssh.PublicKey
	logins   atomic.Int32 // authentication attempts seen
}

// newSSHKey makes an Ed25519 key and writes it to a file, as ssh-keygen would.
func newSSHKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(f, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, f
}

func startSSHServer(t *testing.T, clientKey ssh.PublicKey) *sshServer {
	t.Helper()
	hostKey, _ := newSSHKey(t)
	srv := &sshServer{dir: t.TempDir(), hostKey: hostKey, clientOK: clientKey}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv.addr = l.Addr().String()
	config := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		srv.logins.Add(1)
		if bytes.Equal(key.Marshal(), srv.clientOK.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	config.AddHostKey(srv.hostKey)
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go srv.serve(nc, config)
		}
	}()
	return srv
}

func (srv *sshServer) serve(nc net.Conn, config *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, requests, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem" && len(req.Payload) >= 4 && string(req.Payload[4:]) == "sftp"
				_ = req.Reply(ok, nil)
				if ok {
					s, err := sftplib.NewServer(ch, sftplib.WithServerWorkingDirectory(srv.dir))
					if err == nil {
						_ = s.Serve()
					}
					ch.Close()
				}
			}
		}()
	}
}

// knownHosts writes a known_hosts file holding key for the server.
func (srv *sshServer) knownHosts(t *testing.T, key ssh.PublicKey) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(knownhosts.Line([]string{srv.addr}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (srv *sshServer) target(t *testing.T, path, keyFile, knownHosts string) *Target {
	t.Helper()
	host, port, _ := net.SplitHostPort(srv.addr)
	cfg, err := ParseURL("sftp://backup@" + net.JoinHostPort(host, port) + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyFile, cfg.KnownHosts = keyFile, knownHosts
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sftpFixture is a server, a client key it accepts and a known_hosts file that knows it.
func sftpFixture(t *testing.T, path string) (*sshServer, *Target) {
	t.Helper()
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	return srv, srv.target(t, path, keyFile, srv.knownHosts(t, srv.hostKey.PublicKey()))
}

func TestSFTPRoundTrip(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "backups/host1")
	ctx := context.Background()
	body := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: many packets in flight
	n, err := s.Put(ctx, "shop/db/a.sql.zst", bytes.NewReader(body))
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Put: %d, %v", n, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(srv.dir, "backups/host1/shop/db/a.sql.zst"))
	if err != nil || !bytes.Equal(onDisk, body) {
		t.Fatalf("the server's file differs (%v)", err)
	}
	if _, err := s.Put(ctx, "shop/db/a.sql.zst", strings.NewReader("other")); !errors.Is(err, target.ErrExist) {
		t.Errorf("a second Put of the key: %v, want ErrExist", err)
	}
	rc, err := s.Get(ctx, "shop/db/a.sql.zst")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	if _, err := s.Get(ctx, "shop/db/missing"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("Get of a missing key: %v", err)
	}
	if _, err := s.Get(ctx, "shop/db"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Get of a directory: %v", err)
	}
	objs, err := target.Collect(s.List(ctx, ""))
	if err != nil || len(objs) != 1 || objs[0].Key != "shop/db/a.sql.zst" || objs[0].Size != int64(len(body)) {
		t.Errorf("List: %+v, %v", objs, err)
	}
	if err := s.Delete(ctx, "shop/db/a.sql.zst"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "shop/db/a.sql.zst"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	for _, step := range target.Check(ctx, s) {
		if step.Err != nil {
			t.Errorf("check %s: %v", step.Operation, step.Err)
		}
	}
	if objs, err := target.Collect(s.List(ctx, "nothing/here/")); err != nil || len(objs) != 0 {
		t.Errorf("listing a missing directory: %v, %v", objs, err)
	}
}

// The listing is the directory target's, key for key: the same order (S3's), hidden and
// temporary files skipped.
func TestSFTPListsAsLocal(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "")
	local, err := target.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"p/db/db-x", "p/db/y", "p/db-x/z", "p/db.y", "p/dbz", "p/db/a/b/c", "q/a", "p/db/db/x"} {
		for _, tg := range []target.Target{s, local} {
			if _, err := tg.Put(ctx, k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(srv.dir, "p/db/.y"+target.TempMarker+"abc"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "p/", "p/db", "p/db/", "p/db/db", "q", "r/"} {
		want, err := target.Collect(local.List(ctx, prefix))
		if err != nil {
			t.Fatal(err)
		}
		got, err := target.Collect(s.List(ctx, prefix))
		if err != nil {
			t.Fatal(err)
		}
		if keys(got) != keys(want) {
			t.Errorf("List(%q):\n got %s\nwant %s", prefix, keys(got), keys(want))
		}
	}
	// A listing stopped early ends cleanly.
	for range s.List(ctx, "") {
		break
	}
	if _, err := target.Collect(s.List(ctx, "p/")); err != nil {
		t.Error(err)
	}
}

func keys(objs []target.Object) string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Key)
	}
	return strings.Join(ks, " ")
}

// A Put whose stream fails, or whose context is cancelled, leaves nothing on the server.
func TestSFTPFailedPutLeavesNothing(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "b")
	if _, err := s.Put(context.Background(), "p/db/x", &failingReader{after: 3 << 20}); err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Errorf("Put: %v, want the stream's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	left := 1 << 20
	cancelling := readerFunc(func(p []byte) (int, error) {
		if left <= 0 {
			cancel()
			return 0, nil
		}
		n := min(len(p), left)
		left -= n
		return n, nil
	})
	if _, err := s.Put(ctx, "p/db/y", cancelling); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put: %v", err)
	}
	// The SFTP session dies in the middle: the temporary file is removed over a new connection.
	sent, killed := 0, false
	dying := readerFunc(func(p []byte) (int, error) {
		if sent > 1<<20 && !killed {
			s.mu.Lock()
			s.conn.client.Close()
			s.mu.Unlock()
			killed = true
		}
		sent += len(p)
		return len(p), nil
	})
	_, err := s.Put(context.Background(), "p/db/z", io.LimitReader(dying, 8<<20))
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "connection") {
		t.Errorf("Put over a dying session: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(srv.dir, "b/p/db"))
	if err != nil || len(entries) != 0 {
		t.Errorf("left on the server: %v (%v)", entries, err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestSFTPRemovesTemporaries(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "")
	ctx := context.Background()
	if _, err := s.Put(ctx, "p/db/keep", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(srv.dir, "p/db")
	for _, name := range []string{".a" + target.TempMarker + "1", ".b" + target.TempMarker + "2"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-7 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, ".b"+target.TempMarker+"2"), old, old); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemoveStale(ctx, "p/db/", time.Now().Add(-6*time.Hour))
	if err != nil || len(removed) != 1 || removed[0] != "p/db/.b"+target.TempMarker+"2" {
		t.Errorf("RemoveStale: %v, %v", removed, err)
	}
	if err := s.RemoveIncomplete(ctx, "p/db/a"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Errorf("left: %v", entries)
	}
}

// A pinned object reads the bytes it had when pinned, even once its name holds others.
func TestSFTPPin(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "")
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", strings.NewReader("verified bytes")); err != nil {
		t.Fatal(err)
	}
	p, err := target.Pin(ctx, s, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	file := filepath.Join(srv.dir, "a")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("forged bytes!!"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rc, err := p.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != "verified bytes" || p.Size() != 14 {
			t.Errorf("pinned read: %q, %v", got, err)
		}
	}
}

// An unknown host key is refused before the client logs in, with its fingerprint and how to
// add it; nothing is written.
func TestSFTPUnknownHostKey(t *testing.T) {
	t.Parallel()
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	missing := filepath.Join(t.TempDir(), "known_hosts")
	other, _ := newSSHKey(t)
	otherHost := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(otherHost, []byte(knownhosts.Line([]string{"elsewhere:22"}, other.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.addr)
	for _, kh := range []string{missing, otherHost} {
		s := srv.target(t, "b", keyFile, kh)
		_, err := s.Put(context.Background(), "p/x", strings.NewReader("data"))
		if !errors.Is(err, ErrHostKeyUnknown) {
			t.Fatalf("Put: %v, want ErrHostKeyUnknown", err)
		}
		t.Log(err)
		for _, want := range []string{ssh.FingerprintSHA256(srv.hostKey.PublicKey()), "ssh-keyscan -p " + port + " 127.0.0.1 >> " + kh,
			"[127.0.0.1]:" + port + " ssh-ed25519 ", "before anything was sent"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	}
	if n := srv.logins.Load(); n != 0 {
		t.Errorf("%d logins were tried with an unknown host key", n)
	}
	if entries, _ := os.ReadDir(srv.dir); len(entries) != 0 {
		t.Errorf("written with an unknown host key: %v", entries)
	}
}

func TestSFTPChangedHostKey(t *testing.T) {
	t.Parallel()
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	old, _ := newSSHKey(t)
	kh := srv.knownHosts(t, old.PublicKey())
	s := srv.target(t, "b", keyFile, kh)
	_, err := target.Collect(s.List(context.Background(), ""))
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("List: %v, want ErrHostKeyChanged", err)
	}
	t.Log(err)
	_, port, _ := net.SplitHostPort(srv.addr)
	for _, want := range []string{ssh.FingerprintSHA256(srv.hostKey.PublicKey()), ssh.FingerprintSHA256(old.PublicKey()), kh + ":1",
		"ssh-keygen -R '[127.0.0.1]:" + port + "' -f " + kh} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if n := srv.logins.Load(); n != 0 {
		t.Errorf("%d logins were tried with a changed host key", n)
	}
}

// A known_hosts file with keys of other types only: the server's key cannot be checked, and
// is refused as a changed one.
func TestSFTPHostKeyOfAnotherType(t *testing.T) {
	t.Parallel()
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s := srv.target(t, "b", keyFile, srv.knownHosts(t, old))
	_, err = s.Get(context.Background(), "x")
	t.Log(err)
	if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), "ecdsa-sha2-nistp256") {
		t.Errorf("Get: %v, want ErrHostKeyChanged naming the known key's type", err)
	}
	if n := srv.logins.Load(); n != 0 {
		t.Errorf("%d logins were tried", n)
	}
}

func TestSFTPWrongKey(t *testing.T) {
	t.Parallel()
	client, _ := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	_, wrong := newSSHKey(t)
	s := srv.target(t, "b", wrong, srv.knownHosts(t, srv.hostKey.PublicKey()))
	_, err := s.Put(context.Background(), "p/x", strings.NewReader("data"))
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), `log in "backup"`) {
		t.Errorf("Put with a key the server does not know: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error shows the key: %v", err)
	}
}

// A server that is not there fails as a network error, after a few tries.
func TestSFTPUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := ParseURL("sftp://backup@" + addr + "/b")
	if err != nil {
		t.Fatal(err)
	}
	cfg.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	_, cfg.KeyFile = newSSHKey(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = s.Get(ctx, "x")
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the SFTP server "+addr) {
		t.Errorf("Get: %v", err)
	}
}

// The connection is shared, closed when idle, and dialled again when needed.
func TestSFTPRedials(t *testing.T) {
	t.Parallel()
	_, s := sftpFixture(t, "")
	ctx := context.Background()
	if _, err := s.Put(ctx, "a", strings.NewReader("1")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil || c.users != 0 {
		t.Fatalf("after Put: connection %v", c)
	}
	c.ssh.Close() // lost, and known to be
	<-c.closed
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// The SFTP session ends under the connection (its server process died): the connection is
	// closed, or the next request finds out and is made again on a new one.
	for _, op := range []func() error{
		func() error { return s.Delete(ctx, "missing") },
		func() error {
			rc, err := s.Get(ctx, "a")
			if err == nil {
				rc.Close()
			}
			return err
		},
		func() error { _, err := s.Put(ctx, "b", strings.NewReader("2")); return err },
	} {
		s.mu.Lock()
		s.conn.client.Close()
		s.mu.Unlock()
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if _, err := target.Collect(s.List(ctx, "")); err != nil {
		t.Fatal(err)
	}
}

// Operations at once share the one connection: uploads and reads interleave, and each object
// holds its own bytes.
func TestSFTPConcurrent(t *testing.T) {
	t.Parallel()
	_, s := sftpFixture(t, "c")
	ctx := context.Background()
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			key := fmt.Sprintf("p/s/obj-%d", i)
			body := bytes.Repeat([]byte{byte('a' + i)}, 200_000+i*1000)
			if _, err := s.Put(ctx, key, bytes.NewReader(body)); err != nil {
				errs <- err
				return
			}
			rc, err := s.Get(ctx, key)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err == nil && !bytes.Equal(got, body) {
				err = fmt.Errorf("%s: read back %d bytes that differ", key, len(got))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if objs, err := target.Collect(s.List(ctx, "p/s/")); err != nil || len(objs) != 8 {
		t.Errorf("listed %d, %v", len(objs), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.users != 0 {
		t.Errorf("the connection after all is done: %+v", s.conn)
	}
}

// Without a key file: ssh-agent's keys, else ~/.ssh/id_*; a key with a passphrase is refused
// saying so.
func TestSFTPKeySources(t *testing.T) {
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	kh := srv.knownHosts(t, srv.hostKey.PublicKey())
	ctx := context.Background()
	t.Setenv(EnvSFTPKeyFile, "")

	// ssh-agent holding the key.
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(priv)
	srv.clientOK = other.PublicKey()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	if _, err := srv.target(t, "a", "", kh).Put(ctx, "x", strings.NewReader("1")); err != nil {
		t.Fatalf("logging in with ssh-agent's key: %v", err)
	}

	// No agent: ~/.ssh/id_ed25519.
	srv.clientOK = client.PublicKey()
	t.Setenv("SSH_AUTH_SOCK", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	if _, err := srv.target(t, "a", "", kh).Get(ctx, "x"); err == nil || !strings.Contains(err.Error(), "no SSH key to log in with") {
		t.Errorf("without any key: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.target(t, "a", "", kh).Get(ctx, "x"); err != nil {
		t.Errorf("logging in with ~/.ssh/id_ed25519: %v", err)
	}

	// A key with a passphrase.
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret words"))
	if err != nil {
		t.Fatal(err)
	}
	protected := filepath.Join(t.TempDir(), "id_protected")
	if err := os.WriteFile(protected, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = srv.target(t, "a", protected, kh).Get(ctx, "x")
	if err == nil || !strings.Contains(err.Error(), "protected by a passphrase") {
		t.Errorf("a key with a passphrase: %v", err)
	}
}

// failingReader gives `after` bytes, then fails, as a broken source does.
type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func TestSFTPContract(t *testing.T) {
	t.Parallel()
	targettest.Contract(t, func(t *testing.T) target.Target {
		_, s := sftpFixture(t, "backups")
		return s
	})
}
