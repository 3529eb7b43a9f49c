package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTargetCheck(t *testing.T) {
	cli := newFakeCli(nil)
	dir := t.TempDir()
	if err := cli.run(t, "target", "check", dir); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups"} {
		if !strings.Contains(cli.out.String(), want) {
			t.Errorf("check does not say %q:\n%s", want, cli.out.String())
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	mustFail(t, newFakeCli(nil).run(t, "target", "check", filepath.Join(file, "sub")), "cannot create backup directory")
	mustFail(t, newFakeCli(nil).run(t, "target", "check"), "accepts 1 arg(s)")
}
