package commands

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

func TestRestoreValidatesItsArguments(t *testing.T) {
	api := enginetest.New(enginetest.Service("shop", "db"))
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args  []string
		wants []string
	}{
		"no service":          {[]string{"restore", "latest"}, []string{"no service to restore into: pass --to SERVICE"}},
		"latest without from": {[]string{"restore", "latest", "--to", "db", "--project", "shop", "--no-sidecar"}, []string{`"latest" needs --from DIR`}},
		"no backups":          {[]string{"restore", "latest", "--from", dir, "--to", "db", "--project", "shop"}, []string{`no backup of service "db"`}},
		"no such key":         {[]string{"restore", "shop/db/x.sql.zst", "--from", dir, "--to", "db", "--project", "shop"}, []string{`no backup "shop/db/x.sql.zst"`, "docker backup ls --from"}},
		"no such file":        {[]string{"restore", filepath.Join(dir, "nope.sql.zst"), "--to", "db", "--project", "shop", "--no-sidecar"}, []string{"its manifest", "is missing"}},
	} {
		t.Run(name, func(t *testing.T) {
			mustFail(t, newFakeCli(api).run(t, tc.args...), tc.wants...)
		})
	}
}

// An unsigned backup is refused before anything is asked or touched, with what to do.
func TestRestoreRefusesAnUnsignedBackup(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	api := enginetest.New(enginetest.Service("shop", "db"))
	dir := t.TempDir()
	key := writeTestBackup(t, dir, "shop", "db", nil)
	err := newFakeCli(api).run(t, "restore", key, "--from", dir, "--to", "db", "--project", "shop", "--yes")
	mustFail(t, err, "its manifest is not signed", "--allow-unsigned")
	if touched := api.Calls("ContainerStop", "ContainerStart", "ExecCreate", "CopyToContainer"); len(touched) != 0 {
		t.Errorf("containers were touched: %v", touched)
	}
	if _, err := os.Stat(filepath.Join(dir, key)); err != nil {
		t.Errorf("the artifact is gone: %v", err)
	}
}
