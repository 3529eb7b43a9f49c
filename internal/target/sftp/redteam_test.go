package sftp

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Red team: whoever can write in the target's directory on the server (a shared group, a
// second host's account) replaces a key's directory by a symbolic link to a directory it
// cannot write itself (another target's directory, the backup user's home). The directory
// target refuses this (os.Root: "neither keys nor symbolic links inside the directory reach
// outside it"); the SFTP target follows the link on every operation: it writes, lists and
// deletes outside its directory.
func TestRedTeamSFTPSymlinkedKeyDirectoryEscapes(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "backups")
	ctx := context.Background()
	// Somewhere on the server the attacker cannot write: another target's backups.
	outside := filepath.Join(srv.dir, "archive", "shop", "db")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "old.sql.zst"), []byte("another target's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(outside, ".old.sql.zst"+target.TempMarker+"x")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-7 * time.Hour)
	_ = os.Chtimes(stale, old, old)
	// The attacker's only act, inside the target's directory.
	if err := os.MkdirAll(filepath.Join(srv.dir, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(srv.dir, "archive", "shop"), filepath.Join(srv.dir, "backups", "shop")); err != nil {
		t.Fatal(err)
	}

	var problems []string
	if _, err := s.Put(ctx, "shop/db/new.sql.zst", strings.NewReader("x")); err == nil {
		if _, serr := os.Stat(filepath.Join(outside, "new.sql.zst")); serr == nil {
			problems = append(problems, "Put wrote through the link, outside the target's directory")
		}
	}
	if objs, err := target.Collect(s.List(ctx, "shop/db/")); err == nil {
		for _, o := range objs {
			if o.Key == "shop/db/old.sql.zst" {
				problems = append(problems, "List listed a file outside the target's directory as "+o.Key)
			}
		}
	}
	if rc, err := s.Get(ctx, "shop/db/old.sql.zst"); err == nil {
		rc.Close()
		problems = append(problems, "Get read a file outside the target's directory")
	}
	_ = s.Delete(ctx, "shop/db/old.sql.zst")
	if _, err := os.Stat(filepath.Join(outside, "old.sql.zst")); errors.Is(err, os.ErrNotExist) {
		problems = append(problems, "Delete removed another target's backup outside the target's directory")
	}
	_, _ = s.RemoveStale(ctx, "shop/db/", time.Now().Add(-6*time.Hour))
	if _, err := os.Stat(stale); errors.Is(err, os.ErrNotExist) {
		problems = append(problems, "RemoveStale removed a file outside the target's directory")
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Red team: a named pipe at a key (made by whoever can write on the server). The directory
// target refuses it at once, naming the key (guarantee 12); the SFTP target opens it before
// it looks at what it is, and the server's open blocks until a writer comes: Get (a restore,
// a verify, a manifest read by ls) hangs, and its context does not end it.
func TestRedTeamSFTPNamedPipeAtKeyHangs(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "")
	ctx := context.Background()
	if _, err := s.Put(ctx, "shop/db/a.sql.zst", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(srv.dir, "shop/db/b.manifest.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal("mkfifo:", err)
	}
	t.Cleanup(func() {
		// Let the server's blocked open go (a reader and a writer).
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			f.Close()
		}
	})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		rc, err := s.Get(ctx, "shop/db/b.manifest.json")
		if err == nil {
			rc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "b.manifest.json") {
			t.Errorf("Get of a named pipe: %v, want refused naming the key", err)
		}
	case <-time.After(8 * time.Second):
		t.Error("Get of a named pipe at a key still hangs 6 s after its context ended (2 s)")
	}
}

// Red team: an upload paced at the smallest cap (1 KiB/s) whose context ends (Ctrl-C, the
// sidecar's timeout) stops at once and leaves nothing on the server.
func TestRedTeamSFTPPacedPutCancelled(t *testing.T) {
	t.Parallel()
	srv, s := sftpFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(time.Second, cancel) // no deadline: the limiter cannot tell in advance
	start := time.Now()
	_, err := target.PutLimited(ctx, s, "p/s/big", io.LimitReader(zeros{}, 10<<20), bandwidth.NewLimiter(bandwidth.Min))
	if err == nil {
		t.Fatal("a cancelled paced Put succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the paced Put ended %s after its context (1 s)", took)
	}
	entries, _ := os.ReadDir(filepath.Join(srv.dir, "p/s"))
	if len(entries) != 0 {
		t.Errorf("left on the server: %v", entries)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Red team: the SFTP target takes its key only from a file, so a user who puts the key itself
// in DOCKER_BACKUP_SFTP_KEY_FILE (or DOCKER_BACKUP_TARGET_<NAME>_SFTP_KEY_FILE; S3's secrets
// have forms without _FILE) gets an error that holds the private key: os.ReadFile's error
// repeats the "path", and it reaches the plugin's terminal, the sidecar's log and `status`.
func TestRedTeamSFTPKeyPastedAsItsFileNameIsShown(t *testing.T) {
	client, keyFile := newSSHKey(t)
	srv := startSSHServer(t, client.PublicKey())
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSFTPKeyFile, string(pemKey))
	t.Setenv("SSH_AUTH_SOCK", "")
	s := srv.target(t, "b", "", srv.knownHosts(t, srv.hostKey.PublicKey()))
	_, err = s.Get(context.Background(), "x")
	if err == nil {
		t.Fatal("logged in")
	}
	body := strings.Split(strings.TrimSpace(string(pemKey)), "\n")[1] // the key's first line of base64
	if strings.Contains(err.Error(), body) {
		t.Errorf("the error shows the private key: %.200s…", err)
	}
}
