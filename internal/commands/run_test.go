package commands

import (
	"path/filepath"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

func TestRunValidatesItsFlags(t *testing.T) {
	dir := t.TempDir()
	api := enginetest.New(enginetest.Service("shop", "db"))
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"run"}, []string{"accepts 1 arg(s), received 0"}},
		{[]string{"run", "db", "--to", dir, "--compression", "lz4"}, []string{`unknown compression "lz4"`, "zstd or gzip"}},
		{[]string{"run", "db", "--to", dir, "--strategy", "oracle"}, []string{`unknown strategy "oracle"`, "mongo, mysql, postgres, redis, sqlite, volume"}},
		{[]string{"run", "db", "--no-sidecar"}, []string{"no target given", "--to ./backups"}},
		{[]string{"run", "db", "--to", "ftp://host/x"}, []string{`unsupported scheme "ftp"`}},
		{[]string{"run", "nosuch", "--project", "shop", "--to", dir}, []string{`compose project "shop" has no service "nosuch"`, "its services: db"}},
		{[]string{"run", "db", "--project", "other", "--to", dir}, []string{`no compose project "other"`, "projects with containers: shop"}},
		{[]string{"run", "db", "--project", "shop", "--to", dir, "--strategy", "sqlite"}, []string{"the sqlite strategy needs the database file", "--database"}},
		{[]string{"run", "db", "--to", dir, "--exclude", "*.log", "--exclude", "[a-"}, []string{`exclude pattern "[a-"`, "a trailing / matches directories only"}},
		{[]string{"run", "db", "--to", dir, "--strategy", "postgres", "--exclude", "*.log"}, []string{"apply to the volume strategy only", "postgres"}},
		{[]string{"run", "db", "--to", dir, "--limit-upload", "10Mbit/s"}, []string{`--limit-upload: rate "10Mbit/s"`, "10MiB/s, 500KiB/s, 2MB/s"}},
	} {
		t.Run(filepath.Base(tc.args[len(tc.args)-1]), func(t *testing.T) {
			mustFail(t, newFakeCli(api).run(t, tc.args...), tc.wants...)
		})
	}
}

// Without --to, the sidecar runs the job: direct-only flags are refused, not ignored.
func TestRunThroughTheSidecarRefusesDirectFlags(t *testing.T) {
	api := enginetest.New(enginetest.Service("shop", "db"), enginetest.Service("shop", "backup", enginetest.Sidecar()))
	err := newFakeCli(api).run(t, "run", "db", "--project", "shop", "--compression", "gzip")
	mustFail(t, err, "apply to direct backups", "--no-sidecar", "shop-backup-1")
	err = newFakeCli(api).run(t, "run", "db", "--project", "shop", "--exclude", "*.log")
	mustFail(t, err, "--exclude", "apply to direct backups")
	err = newFakeCli(api).run(t, "run", "db", "--project", "shop", "--limit-upload", "1MiB/s")
	mustFail(t, err, "--limit-upload", "apply to direct backups")
}
