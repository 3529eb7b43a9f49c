package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/commands/output"
)

func TestTargetCheck(t *testing.T) {
	cli := newFakeCli(nil)
	dir := t.TempDir()
	if err := cli.run(t, "target", "check", dir); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ok      write", "ok      no-clobber", "ok      interrupted write", "ok      list", "ok      read", "ok      delete", "upload    8MiB in", "download  8MiB in", "every byte compared", "ready for backups"} {
		if !strings.Contains(cli.out.String(), want) {
			t.Errorf("check does not say %q:\n%s", want, cli.out.String())
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	mustFail(t, newFakeCli(nil).run(t, "target", "check", filepath.Join(file, "sub")), "cannot create backup directory")
	mustFail(t, newFakeCli(nil).run(t, "target", "check"), "accepts 1 arg(s)")
	mustFail(t, newFakeCli(nil).run(t, "target", "check", "--size", "lots", dir), `--size "lots": give a size like 8MiB`)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "docker-backup-check" {
		t.Errorf("the check left %v in the target", entries)
	} else if left, _ := os.ReadDir(filepath.Join(dir, "docker-backup-check")); len(left) != 0 {
		t.Errorf("the check left %v in docker-backup-check/", left)
	}
}

func TestTargetCheckJSON(t *testing.T) {
	cli := newFakeCli(nil)
	if err := cli.run(t, "target", "check", "--size", "1MiB", "--format", "json", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	var r output.TargetChecked
	if err := json.Unmarshal(cli.out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, cli.out.String())
	}
	if !r.Ready || len(r.Steps) != 6 || r.Throughput == nil || r.Throughput.Bytes != 1<<20 || r.Throughput.UploadSeconds <= 0 {
		t.Errorf("report %+v", r)
	}
	for _, s := range r.Steps {
		if !s.OK || s.Seconds <= 0 {
			t.Errorf("step %+v", s)
		}
	}
}
