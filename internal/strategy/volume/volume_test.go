package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// noWorkerHere is a Worker that can never run (a plugin built with cgo cannot be its own
// worker image).
type noWorkerHere struct{}

func (noWorkerHere) Open(context.Context, *containers.Container, []string, strategy.WorkerAccess) (strategy.WorkerSession, error) {
	return nil, fmt.Errorf("%w: /usr/libexec/docker/cli-plugins/docker-backup is dynamically linked (build it with CGO_ENABLED=0 for a worker container)", strategy.ErrNoWorker)
}

// TestRequiredWorkerIsNotReplaced: with a worker required (DOCKER_BACKUP_WORKER=on), a worker
// that cannot run is an error saying why and what to do — never the archive API's fallback
// (an error wrapping ErrNoWorker, which the pipeline takes for "use the archive API").
func TestRequiredWorkerIsNotReplaced(t *testing.T) {
	c := &containers.Container{Name: "app-files-1", Project: "app", Service: "files"}
	for _, required := range []bool{false, true} {
		v, err := New([]string{"/data"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v.Worker, v.RequireWorker = noWorkerHere{}, required
		_, _, err = v.BackupPacked(context.Background(), c, strategy.WorkRequest{}, io.Discard, nil)
		if !required {
			if !errors.Is(err, strategy.ErrNoWorker) {
				t.Errorf("not required: %v, want the archive API's fallback", err)
			}
			continue
		}
		_, ferr := v.Found(context.Background(), c, strategy.Source{SourcePaths: "/data"}, nil)
		for what, err := range map[string]error{"backup": err, "verify's count": ferr} {
			if err == nil || errors.Is(err, strategy.ErrNoWorker) || !strings.Contains(err.Error(), "dynamically linked") ||
				!strings.Contains(err.Error(), "CGO_ENABLED=0") || !strings.Contains(err.Error(), "DOCKER_BACKUP_WORKER=on") {
				t.Errorf("required, %s: %v; want an error of its own saying why and what to do", what, err)
			}
		}
	}
}
