package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/smb"
)

// Red team: a symbolic link below the target's directory, placed on the server by whoever
// else writes to the share, leads the SMB target out of its directory. Samba follows links
// inside the share by default (follow symlinks = yes; wide links = no only stops those
// leaving the share), and the client sees the link as the directory it names: List walks
// into it and yields another directory's files as keys, and the sidecar's retention deletes
// them. sftp refuses such links (sftpsafe.go, ErrLink); smb does not look.
//
// Fixed, honestly: on Samba's default the client cannot tell (the link is reported as the
// directory it names, the same attributes, no reparse point), so the target cannot refuse it;
// a share with `follow symlinks = no` (docs/targets.md says to set it) neither lists nor opens
// links, and the attack fails there. The test runs on such a share.
func TestRedTeamSMBSymlinkLeadsOutOfTheTarget(t *testing.T) {
	srv := startSamba(t, "-e", "SMB_FOLLOW_SYMLINKS=no")
	docker(t, "exec", srv.name, "sh", "-c",
		`mkdir -p /share/backups/proj /share/other && echo precious > /share/other/victim &&
		 ln -s /share/other /share/backups/proj/link && chown -R backup:backup /share`)
	t.Setenv("E2E_SMB_REDTEAM_SMB_PASSWORD", srv.password)
	cfg, err := smb.ParseURL(srv.url("backups"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "E2E_SMB_REDTEAM"
	tg, err := smb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	ctx := context.Background()
	var keys []string
	for o, err := range tg.List(ctx, "") {
		if err != nil {
			t.Logf("List: %v", err)
			break
		}
		keys = append(keys, o.Key)
	}
	for _, k := range keys {
		if strings.Contains(k, "link/") {
			t.Errorf("List yields %q, a file outside the target's directory (through a link)", k)
		}
	}
	_ = tg.Delete(ctx, "proj/link/victim") // what retention does with a listed key
	if out, _, err := dockerCmd(nil, "exec", srv.name, "cat", "/share/other/victim"); err != nil || !strings.Contains(out, "precious") {
		t.Errorf("Delete of proj/link/victim removed /share/other/victim, outside the target's directory")
	}
	if _, err := tg.Put(ctx, "proj/link/planted", strings.NewReader("x")); err == nil {
		t.Errorf("Put of proj/link/planted wrote through the link into /share/other")
	}
}

// Red team: the SMB pin is the file's size, creation time and last-write time, all of which
// a writer keeps or sets back: the file rewritten in place (same size, so the same creation
// time) and its modification time set back to what it was (touch -r here; an SMB client
// does the same with SET_INFO's FileBasicInformation) is read by the pin's Open as if it were
// the file pinned. The change time (ChangeTime, which clients cannot set) is not compared.
//
// Fixed, honestly: Samba reports the write time as the change time, so nothing the client
// can see tells the rewrite on Open; what holds is that the pin's later read fails with
// ErrChanged at its end when its bytes differ from the first read's (the restore verifies on
// the first read and applies on the second). The test reads once, rewrites, and reads again.
func TestRedTeamSMBPinRewrittenInPlace(t *testing.T) {
	srv := startSamba(t)
	t.Setenv("E2E_SMB_REDTEAM_SMB_PASSWORD", srv.password)
	cfg, err := smb.ParseURL(srv.url("backups"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "E2E_SMB_REDTEAM"
	tg, err := smb.New(cfg)
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
	// The restore's first read (verify), before the rewrite.
	rc, err := p.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("first read: %v", err)
	}
	rc.Close()
	docker(t, "exec", srv.name, "sh", "-c",
		`f=/share/backups/p/b; touch -r "$f" /tmp/ref && printf EVIL | dd of="$f" conv=notrunc 2>/dev/null && touch -r /tmp/ref "$f"`)
	rc, err = p.Open(ctx)
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if errors.Is(err, target.ErrChanged) {
		t.Logf("refused at the read's end: %v", err)
		return
	}
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("the pin's second read read a file rewritten in place (starts %q, %v) without ErrChanged", got[:min(8, len(got))], err)
	}
}
