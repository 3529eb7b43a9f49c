package commands

import (
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

func TestStatusNeedsASidecar(t *testing.T) {
	api := enginetest.New(enginetest.Service("shop", "db"))
	mustFail(t, newFakeCli(api).run(t, "status", "--format", "xml"), `unknown --format "xml"`)
	mustFail(t, newFakeCli(api).run(t, "status", "--project", "shop"), "no running docker-backup sidecar in compose project shop")
	mustFail(t, newFakeCli(api).run(t, "status"), "no running docker-backup sidecar on this Docker host")
}
