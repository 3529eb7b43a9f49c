package commands

import "testing"

func TestStatusNeedsASidecar(t *testing.T) {
	api := &fakeAPI{}
	api.service("shop", "db", true)
	mustFail(t, newFakeCli(api).run(t, "status", "--format", "xml"), `unknown --format "xml"`)
	mustFail(t, newFakeCli(api).run(t, "status", "--project", "shop"), "no running docker-backup sidecar in compose project shop")
	mustFail(t, newFakeCli(api).run(t, "status"), "no running docker-backup sidecar on this Docker host")
}
