package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

func TestDetect(t *testing.T) {
	mustFail(t, newFakeCli(nil).run(t, "detect", "--format", "xml"), `unknown --format "xml"`)
	mustFail(t, newFakeCli(nil).run(t, "detect"), "no compose projects on this Docker host")

	api := enginetest.New(
		enginetest.Service("shop", "db", enginetest.Stopped(), enginetest.WithImage("postgres:16"), enginetest.WithVolume("pgdata", "/var/lib/postgresql/data")),
		enginetest.Service("other", "web", enginetest.Stopped()),
	)
	mustFail(t, newFakeCli(api).run(t, "detect"), "several compose projects on this Docker host (other, shop)")

	cli := newFakeCli(api)
	if err := cli.run(t, "detect", "--project", "shop"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Project shop", "* postgres", `image "postgres:16"`, "volume    mounts /var/lib/postgresql/data",
		`docker-backup.strategy: "postgres"`, "docker backup run db --project shop --to ./backups"} {
		if !strings.Contains(cli.out.String(), want) {
			t.Errorf("detect does not say %q:\n%s", want, cli.out.String())
		}
	}
	cli = newFakeCli(api)
	if err := cli.run(t, "detect", "--project", "shop", "--format", "json"); err != nil {
		t.Fatal(err)
	}
	var out []detectedService
	if err := json.Unmarshal(cli.out.Bytes(), &out); err != nil || len(out) != 1 || out[0].Strategies[0].Strategy != "postgres" {
		t.Errorf("json: %+v, %v", out, err)
	}
}
