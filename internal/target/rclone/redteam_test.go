package rclone

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Red team: a symbolic link below the target's directory (placed by whoever else writes
// there) leads a Put, a Get and a Delete outside it: rclone's local backend skips links in a
// listing but resolves them in every path it opens, and the target does not look. sftp
// refuses such links (sftpsafe.go).
func TestRedTeamRcloneLocalSymlink(t *testing.T) {
	conf, dir := localRemote(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "proj"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "proj", "link")); err != nil {
		t.Fatal(err)
	}
	tg := open(t, conf, dir)
	ctx := context.Background()
	for o, err := range tg.List(ctx, "") {
		if err == nil && strings.Contains(o.Key, "link/") {
			t.Errorf("List yields %q, through a link", o.Key)
		}
	}
	if _, err := tg.Put(ctx, "proj/link/planted", strings.NewReader("x")); err == nil {
		t.Errorf("Put of proj/link/planted wrote through the link, outside the target's directory")
	}
	if rc, err := tg.Get(ctx, "proj/link/victim"); err == nil {
		rc.Close()
		t.Errorf("Get of proj/link/victim read a file outside the target's directory")
	}
	_ = tg.Delete(ctx, "proj/link/victim")
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Errorf("Delete of proj/link/victim removed a file outside the target's directory: %v", err)
	}
}
