package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestDetect(t *testing.T) {
	mustFail(t, newFakeCli(nil).run(t, "detect", "--format", "xml"), `unknown --format "xml"`)
	mustFail(t, newFakeCli(nil).run(t, "detect"), "no compose projects on this Docker host")

	api := &fakeAPI{}
	db := api.service("shop", "db", false)
	c := api.inspect[db]
	c.Config.Image = "postgres:16"
	c.Mounts = []container.MountPoint{{Type: mount.TypeVolume, Destination: "/var/lib/postgresql/data", RW: true}}
	api.inspect[db] = c
	api.service("other", "web", false)
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
