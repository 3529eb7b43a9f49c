package commands

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/watchdog"
)

func TestRootHelpListsTheCommands(t *testing.T) {
	cli := newFakeCli(nil)
	if err := cli.run(t, "--help"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"detect", "run", "restore", "ls", "status", "target"} {
		if !strings.Contains(cli.out.String(), want) {
			t.Errorf("help does not list %s:\n%s", want, cli.out.String())
		}
	}
	if strings.Contains(cli.out.String(), watchdog.Command) {
		t.Error("the watchdog command is listed")
	}
}

func TestUnreachableEngine(t *testing.T) {
	api := enginetest.New()
	api.OnCall = unreachable
	cli := newFakeCli(api)
	err := cli.run(t, "detect")
	mustFail(t, err, "cannot reach the Docker engine at unix:///var/run/docker.sock", "no such file or directory", "DOCKER_HOST", `"default"`)
}
