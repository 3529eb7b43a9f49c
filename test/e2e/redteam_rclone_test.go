package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/rclone"
)

// Red team: through rclone's sftp backend, a symbolic link below the target's directory on
// the server (placed by whoever else writes there) is listed as the directory it names: List
// yields another directory's files as keys and the sidecar's retention deletes them. The
// sftp target refuses such links (sftpsafe.go, ErrLink); the rclone target, over the same
// server, did not (rclone's sftp skip_links is off by default and was not set). Fixed: skip_links
// forced, and each directory of a key checked against its parent's listing (rclone.ErrLink).
func TestRedTeamRcloneSFTPSymlink(t *testing.T) {
	srv := startSSHD(t)
	docker(t, "exec", srv.name, "sh", "-c",
		`mkdir -p /home/backup/backups/proj /home/backup/other && echo precious > /home/backup/other/victim &&
		 ln -s /home/backup/other /home/backup/backups/proj/link && chown -R backup:backup /home/backup/backups /home/backup/other`)
	dir := t.TempDir()
	cfg, err := rclone.ParseURL("rclone:box:backups")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConfigFile = rcloneConf(t, srv, dir, dir)
	tg, err := rclone.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	ctx := context.Background()
	for o, err := range tg.List(ctx, "") {
		if err != nil {
			t.Logf("List: %v", err)
			break
		}
		if strings.Contains(o.Key, "link/") {
			t.Errorf("List yields %q, a file outside the target's directory (through a link)", o.Key)
			_ = tg.Delete(ctx, o.Key) // what retention does with a listed key
		}
	}
	if out, _, err := dockerCmd(nil, "exec", srv.name, "cat", "/home/backup/other/victim"); err != nil || !strings.Contains(out, "precious") {
		t.Errorf("a Delete of a listed key removed /home/backup/other/victim, outside the target's directory")
	}
	// The same link at a key's fixed path (host/project/…): refused by every operation.
	if _, err := tg.Put(ctx, "proj/link/planted", strings.NewReader("x")); !errors.Is(err, rclone.ErrLink) {
		t.Errorf("Put of proj/link/planted = %v, want ErrLink", err)
	}
	if rc, err := tg.Get(ctx, "proj/link/victim"); !errors.Is(err, rclone.ErrLink) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get of proj/link/victim = %v, want ErrLink", err)
	}
	if err := tg.Delete(ctx, "proj/link/victim"); !errors.Is(err, rclone.ErrLink) {
		t.Errorf("Delete of proj/link/victim = %v, want ErrLink", err)
	}
	if out, _, err := dockerCmd(nil, "exec", srv.name, "cat", "/home/backup/other/victim"); err != nil || !strings.Contains(out, "precious") {
		t.Errorf("a Delete of proj/link/victim removed /home/backup/other/victim, outside the target's directory")
	}
	if out, _, _ := dockerCmd(nil, "exec", srv.name, "ls", "/home/backup/other"); strings.Contains(out, "planted") {
		t.Errorf("a Put wrote /home/backup/other/planted, outside the target's directory")
	}
}

// Red team guard: through rclone's sftp backend, a pinned file rewritten in place with its
// time set back is refused (ErrChanged). Holds on the fixture because rclone computes the
// file's hash over ssh (md5sum); on a server that runs no command the pin is size and time
// only and would not see it (the package says so: hash.None).
func TestRedTeamRcloneSFTPPinRewrittenInPlace(t *testing.T) {
	srv := startSSHD(t)
	dir := t.TempDir()
	cfg, err := rclone.ParseURL("rclone:box:backups")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConfigFile = rcloneConf(t, srv, dir, dir)
	tg, err := rclone.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	ctx := context.Background()
	body := bytes.Repeat([]byte("a"), 1<<16)
	if _, err := tg.Put(ctx, "p/b", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	p, err := target.Pin(ctx, tg, "p/b")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	docker(t, "exec", srv.name, "sh", "-c",
		`f=/home/backup/backups/p/b; touch -r "$f" /tmp/ref && printf EVIL | dd of="$f" conv=notrunc 2>/dev/null && touch -r /tmp/ref "$f"`)
	rc, err := p.Open(ctx)
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("the pin's Open read a file rewritten in place (starts %q) without ErrChanged", got[:8])
	}
}
