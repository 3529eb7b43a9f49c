package volume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	apivolume "github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// measuringWorker's sessions measure sizes, recording the patterns and paths they were given.
type measuringWorker struct {
	paths, patterns []string
	closed          bool
}

func (w *measuringWorker) Open(_ context.Context, _ *containers.Container, paths []string, access strategy.WorkerAccess) (strategy.WorkerSession, error) {
	if access.Write {
		return nil, errors.New("measuring opened a worker for writing")
	}
	w.paths = paths
	return &measuringSession{w: w}, nil
}

type measuringSession struct {
	strategy.WorkerSession // nil: any other call panics
	w                      *measuringWorker
}

func (s *measuringSession) Measure(_ context.Context, patterns []string) (*strategy.Sizes, error) {
	s.w.patterns = patterns
	return &strategy.Sizes{Files: 3, Bytes: 30, ExcludedFiles: 2, ExcludedBytes: 20}, nil
}

func (s *measuringSession) Close() error { s.w.closed = true; return nil }

// fakeUsage is the Engine's /system/df of volumes, counting the calls.
type fakeUsage struct{ calls int }

func (f *fakeUsage) DiskUsage(_ context.Context, o client.DiskUsageOptions) (client.DiskUsageResult, error) {
	f.calls++
	var r client.DiskUsageResult
	if o.Volumes && o.Verbose {
		r.Volumes.Items = []apivolume.Volume{
			{Name: "data", UsageData: &apivolume.UsageData{Size: 4096}},
			{Name: "remote", UsageData: &apivolume.UsageData{Size: -1}},
		}
	}
	return r, nil
}

func measuredContainer() *containers.Container {
	return &containers.Container{Name: "app-files-1", Project: "app", Service: "files", Mounts: []container.MountPoint{
		{Type: mount.TypeVolume, Name: "data", Destination: "/data", RW: true},
		{Type: mount.TypeVolume, Name: "remote", Destination: "/remote", RW: true},
		{Type: mount.TypeBind, Source: "/etc/app", Destination: "/config", RW: true},
	}}
}

// TestMeasureThroughTheWorker: the worker walks the paths (read-only) with the strategy's
// patterns, and is closed.
func TestMeasureThroughTheWorker(t *testing.T) {
	v, err := New(nil, []string{"*.log", "cache/"})
	if err != nil {
		t.Fatal(err)
	}
	w := &measuringWorker{}
	v.Worker = w
	z, err := v.Measure(context.Background(), measuredContainer(), &VolumeUsage{API: &fakeUsage{}})
	if err != nil {
		t.Fatal(err)
	}
	if z.Measured == nil || *z.Measured != (strategy.Sizes{Files: 3, Bytes: 30, ExcludedFiles: 2, ExcludedBytes: 20}) || z.Volumes != nil {
		t.Errorf("measured %+v", z)
	}
	if !slices.Equal(w.patterns, []string{"*.log", "cache/"}) || !slices.Equal(w.paths, []string{"/config", "/data", "/remote"}) || !w.closed {
		t.Errorf("the worker got paths %q, patterns %q; closed %v", w.paths, w.patterns, w.closed)
	}
}

// TestMeasureWithoutTheWorker: the worker off, or unable to run and not required, the Engine
// gives the size of each path that is a whole named volume (asked once), and the rest says
// why it is unknown; a required worker that cannot run is an error.
func TestMeasureWithoutTheWorker(t *testing.T) {
	c := measuredContainer()
	usage := &fakeUsage{}
	u := &VolumeUsage{API: usage}
	want := map[string]string{
		"/data":     "/data=data::4096",
		"/remote":   "/remote=remote:the Engine gives no size of the volume remote (only of the local driver's):0",
		"/config":   "/config=:a bind mount:0",
		"/data/sub": "/data/sub=:a part of the volume data:0",
		"/tmp":      "/tmp=:not on a volume:0",
	}
	for _, wk := range []strategy.Worker{nil, noWorkerHere{}} {
		for p, want := range want {
			v, err := New([]string{p}, []string{"*.log"})
			if err != nil {
				t.Fatal(err)
			}
			v.Worker = wk
			z, err := v.Measure(context.Background(), c, u)
			if err != nil {
				t.Fatal(err)
			}
			if len(z.Volumes) != 1 || z.Measured != nil {
				t.Fatalf("worker %v, %s: %+v", wk, p, z)
			}
			e := z.Volumes[0]
			if got := fmt.Sprintf("%s=%s:%s:%d", e.Path, e.Volume, strings.SplitN(e.Unknown, ":", 2)[0], e.Bytes); got != want {
				t.Errorf("worker %v: %s, want %s", wk, got, want)
			}
			if wk == nil && z.Why != "the worker is off (DOCKER_BACKUP_WORKER=off)" || wk != nil && !strings.Contains(z.Why, "no worker can run: ") {
				t.Errorf("worker %v: why %q", wk, z.Why)
			}
		}
	}
	if usage.calls != 1 {
		t.Errorf("the Engine was asked %d times for its volumes' sizes, want once", usage.calls)
	}
	v, _ := New([]string{"/data"}, nil)
	v.Worker, v.RequireWorker = noWorkerHere{}, true
	if _, err := v.Measure(context.Background(), c, u); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a required worker that cannot run: %v", err)
	}
}
