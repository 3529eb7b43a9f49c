package commands

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/worker"
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

// TestDetectSizeFailureIsAWarning: a measurement that fails is a warning naming the service
// and the reason (and the JSON's volume_size_error); detect still succeeds. --no-size asks
// nothing; a bad --exclude is refused.
func TestDetectSizeFailureIsAWarning(t *testing.T) {
	t.Setenv(worker.EnvMode, "off")
	api := enginetest.New(enginetest.Service("shop", "files", enginetest.WithImage("example/app"), enginetest.WithVolume("uploads", "/srv/uploads")))
	api.OnCall = func(c enginetest.Call) error {
		if c.Method == "DiskUsage" {
			return errors.New("the engine is busy")
		}
		return nil
	}
	cli := newFakeCli(api)
	if err := cli.run(t, "detect", "--format", "json", "--exclude", "*.log"); err != nil {
		t.Fatal(err)
	}
	if want := "warning: files: cannot measure its volumes: asking the Engine for its volumes' sizes: the engine is busy"; !strings.Contains(cli.err.String(), want) {
		t.Errorf("stderr %q, want %q", cli.err.String(), want)
	}
	var out []detectedService
	if err := json.Unmarshal(cli.out.Bytes(), &out); err != nil || len(out) != 1 || !strings.Contains(out[0].VolumeSizeError, "the engine is busy") || out[0].VolumeSize != nil {
		t.Errorf("json: %+v, %v", out, err)
	}

	n := len(api.Calls("DiskUsage"))
	if err := newFakeCli(api).run(t, "detect", "--no-size"); err != nil {
		t.Fatal(err)
	}
	if len(api.Calls("DiskUsage")) != n {
		t.Error("--no-size asked the Engine for sizes")
	}
	mustFail(t, newFakeCli(api).run(t, "detect", "--exclude", "logs/[a-"), `exclude pattern "logs/[a-"`)
}
