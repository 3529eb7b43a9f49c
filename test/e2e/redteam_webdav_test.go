package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target/webdav"
)

// Red team: a symbolic link below the target's collection on the server's disk (placed by
// whoever else writes there) must not lead List, Get, Put or Delete outside it. Holds on
// the fixture (Apache with Options None: mod_dav refuses or hides links); kept as a guard.
func TestRedTeamWebDAVSymlink(t *testing.T) {
	srv := startWebDAV(t)
	docker(t, "exec", srv.name, "sh", "-c",
		`mkdir -p /srv/dav/backups/proj /srv/other && echo precious > /srv/other/victim &&
		 ln -s /srv/other /srv/dav/backups/proj/link && chown -R www-data:www-data /srv/dav /srv/other`)
	t.Setenv("E2E_WEBDAV_REDTEAM_WEBDAV_USERNAME", srv.user)
	t.Setenv("E2E_WEBDAV_REDTEAM_WEBDAV_PASSWORD", srv.password)
	cfg, err := webdav.ParseURL(srv.url("backups"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "E2E_WEBDAV_REDTEAM"
	tg, err := webdav.New(cfg)
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
			t.Errorf("List yields %q, through a link", o.Key)
		}
	}
	if rc, err := tg.Get(ctx, "proj/link/victim"); err == nil {
		rc.Close()
		t.Errorf("Get of proj/link/victim read a file outside the collection")
	} else {
		t.Logf("Get: %v", err)
	}
	if _, err := tg.Put(ctx, "proj/link/planted", strings.NewReader("x")); err == nil {
		t.Errorf("Put of proj/link/planted wrote through the link")
	} else {
		t.Logf("Put: %v", err)
	}
	_ = tg.Delete(ctx, "proj/link/victim")
	if out, _, err := dockerCmd(nil, "exec", srv.name, "cat", "/srv/other/victim"); err != nil || !strings.Contains(out, "precious") {
		t.Errorf("Delete of proj/link/victim removed a file outside the collection")
	}
}
