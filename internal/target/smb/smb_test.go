package smb

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// The target's behaviour on a real server (the contract, Samba's answers) is tested in
// test/e2e (smb_test.go): no SMB server runs in-process.

func TestParseSMBURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want Config
		str  string
	}{
		{"smb://backup@nas/share", Config{User: "backup", Host: "nas", Port: 445, Share: "share"}, "smb://backup@nas/share"},
		{"smb://backup@nas/share/", Config{User: "backup", Host: "nas", Port: 445, Share: "share"}, "smb://backup@nas/share"},
		{"smb://backup@nas:1445/share/backups/host1/", Config{User: "backup", Host: "nas", Port: 1445, Share: "share", Path: "backups/host1"}, "smb://backup@nas:1445/share/backups/host1"},
		{"smb://OFFICE;backup@nas/share/./a//b", Config{Domain: "OFFICE", User: "backup", Host: "nas", Port: 445, Share: "share", Path: "a/b"}, "smb://OFFICE;backup@nas/share/a/b"},
		{"smb://backup@[fd00::5]/s/b", Config{User: "backup", Host: "fd00::5", Port: 445, Share: "s", Path: "b"}, "smb://backup@[fd00::5]/s/b"},
		{"smb://backup@[::1]:1445/s", Config{User: "backup", Host: "::1", Port: 1445, Share: "s"}, "smb://backup@[::1]:1445/s"},
		{"smb://backup@10.0.0.5:445/s", Config{User: "backup", Host: "10.0.0.5", Port: 445, Share: "s"}, "smb://backup@10.0.0.5/s"},
		{"smb://OFFICE%3Bback%25up@nas/s", Config{Domain: "OFFICE", User: "back%up", Host: "nas", Port: 445, Share: "s"}, "smb://OFFICE;back%25up@nas/s"},
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

func TestParseSMBURLRefuses(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"smb://nas/share", "names no user"},
		{"smb://@nas/share", "names no user"},
		{"smb://;backup@nas/share", "names no user"},
		{"smb://nas/share@2024", "names no user"},
		{"smb://backup@/share", "names no valid host"},
		{"smb://backup@nas", "names no share"},
		{"smb://backup@nas/", "names no share"},
		{"smb://backup@nas/C$/backups", "administrative shares"},
		{"smb://backup@nas:0/s", `port "0" must be a number from 1 to 65535`},
		{"smb://backup@nas:microsoft-ds/s", `port "microsoft-ds" must be`},
		{"smb://backup@nas/s?sign=1", "takes no options"},
		{"smb://backup@nas/s#x", "takes no options"},
		{`smb://backup@nas/s\b`, "backslashes"},
		{"smb://backup@n as/s", "names no valid host"},
		{"smb://backup@nas/s/b\nc", "control character"},
		{"smb://backup@nas/s/.hidden/b", "hidden directories"},
		{"sftp://backup@nas/s", "not an smb:// URL"},
	} {
		_, err := ParseURL(c.url)
		if err == nil {
			t.Errorf("%q: accepted", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.url, err, c.want)
		}
	}
}

// A password in the URL is refused without showing the URL, wherever it sits.
func TestSMBPasswordInURL(t *testing.T) {
	for _, u := range []string{
		"smb://backup:hunter2@nas/share",
		"smb://DOM;backup:hunter2@nas/share/b",
		"smb://backup:hu/nt@er2@nas/share",
		"smb://backup:@nas/share",
		"smb://backup%3Ahunter2@nas/share",
		"smb://DOM%3Bbackup%3ahunter2@nas/share",
	} {
		_, err := ParseURL(u)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("%q: %v, want ErrSecretInURL", u, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "nt@er2") {
			t.Errorf("%q: the error shows the password: %v", u, err)
		}
	}
}

// The password comes from the target's own variable, then the common one, each also as a
// file; none at all says which variables to set.
func TestSMBPassword(t *testing.T) {
	s, err := New(Config{User: "backup", Host: "nas", Share: "s", CredentialsEnv: "DOCKER_BACKUP_TARGET_NAS"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSMBPassword, "")
	t.Setenv(EnvSMBPassword+"_FILE", "")
	t.Setenv("DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD", "")
	t.Setenv("DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD_FILE", "")
	if _, err := s.password(); err == nil || !strings.Contains(err.Error(), "DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD") {
		t.Errorf("no password: %v", err)
	}
	t.Setenv(EnvSMBPassword, "common")
	if pw, _ := s.password(); pw != "common" {
		t.Errorf("got %q, want the common password", pw)
	}
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("own\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD_FILE", f)
	if pw, _ := s.password(); pw != "own" {
		t.Errorf("got %q, want the target's own password from its file", pw)
	}
	if src := s.passwordSource(); !strings.Contains(src, "DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD_FILE") || strings.Contains(src, "own") {
		t.Errorf("source %q", src)
	}
	if strings.Contains(s.String(), "own") || strings.Contains(s.String(), "common") {
		t.Errorf("String() shows a password: %s", s)
	}
}

// A server that accepts the connection and closes it (not an SMB server, or one that died) is
// a network error, tried again; one that cannot be reached says so; neither hangs.
func TestSMBUnreachable(t *testing.T) {
	t.Setenv(EnvSMBPassword, "pw")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	s, _ := New(Config{User: "backup", Host: "127.0.0.1", Port: port, Share: "s"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = s.Get(ctx, "k")
	if err == nil || !strings.Contains(err.Error(), "SMB handshake") {
		t.Errorf("closed at once: %v", err)
	}
	if n := accepted.Load(); n != smbDialAttempts {
		t.Errorf("tried %d times, want %d", n, smbDialAttempts)
	}
	l.Close()
	_, err = s.Get(ctx, "k")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the SMB server") {
		t.Errorf("closed port: %v", err)
	}
}

func TestSMBRequirement(t *testing.T) {
	s, _ := New(Config{Domain: "D", User: "backup", Host: "nas", Share: "s"})
	for _, op := range []string{"write", "list", "read", "delete"} {
		if r := s.Requirement(op); !strings.Contains(r, `D\backup`) {
			t.Errorf("%s: %q", op, r)
		}
	}
	if s.Requirement("other") != "" {
		t.Error("an unknown operation has a requirement")
	}
}
