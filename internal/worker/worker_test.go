package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/worker/extract"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "ON": ModeOn, " off ": ModeOff} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("yes"); err == nil || !strings.Contains(err.Error(), `"yes"`) || !strings.Contains(err.Error(), "auto") {
		t.Errorf("ParseMode(yes): %v, want an error naming the value and what is allowed", err)
	}
}

func TestMounts(t *testing.T) {
	c := &containers.Container{Mounts: []container.MountPoint{
		{Type: mount.TypeVolume, Name: "app_data", Destination: "/data", RW: true},
		{Type: mount.TypeVolume, Name: "app_cache", Destination: "/data/cache", RW: true},
		{Type: mount.TypeBind, Source: "/srv/conf", Destination: "/etc/app", RW: false},
		{Type: mount.TypeTmpfs, Destination: "/tmp"},
	}}
	got, err := Mounts(c, []string{"/data", "/etc/app/x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "app_data", Target: "/data"},
		{Type: mount.TypeVolume, Source: "app_cache", Target: "/data/cache"},
		{Type: mount.TypeBind, Source: "/srv/conf", Target: "/etc/app", ReadOnly: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Mounts =\n%v\nwant\n%v", got, want)
	}
	ro, _ := Mounts(c, []string{"/data/cache"}, false)
	if len(ro) != 1 || !ro[0].ReadOnly || ro[0].Source != "app_cache" {
		t.Errorf("a backup's mounts: %v, want app_cache read-only", ro)
	}
	for p, name := range map[string]string{"/opt/app": "/opt/app", "/tmp/x": "/tmp is on a tmpfs"} {
		if _, err := Mounts(c, []string{p}, false); !errors.Is(err, strategy.ErrNoWorker) || !strings.Contains(err.Error(), name) {
			t.Errorf("Mounts(%s): %v, want ErrNoWorker saying %q", p, err, name)
		}
	}
}

// TestSweep: the session directories of processes that are gone are removed, the others kept.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, fmt.Sprintf("%s%d-abc", sessionPrefix, gone.Process.Pid))
	live := filepath.Join(dir, fmt.Sprintf("%s%d-def", sessionPrefix, os.Getpid()))
	other := filepath.Join(dir, "docker-backup-worker-notapid")
	for _, d := range []string{dead, live, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sweep(dir)
	for d, want := range map[string]bool{dead: false, live: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

// fakeEngine is the part of the Engine a worker's start uses; it refuses to start a
// container that joins another's network namespace (a service that stopped meanwhile).
type fakeEngine struct {
	Engine
	mu       sync.Mutex
	gone     map[string]chan struct{} // closed when the container is removed
	created  []container.NetworkMode
	hosts    []*container.HostConfig
	auto     []bool // AutoRemove of each created
	waits    int    // exits watched
	removed  int
	started  []string
	refusing bool
}

func (f *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

func (f *fakeEngine) VolumeList(context.Context, client.VolumeListOptions) (client.VolumeListResult, error) {
	return client.VolumeListResult{}, nil
}

func (f *fakeEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.created = append(f.created, o.HostConfig.NetworkMode)
	f.hosts = append(f.hosts, o.HostConfig)
	f.auto = append(f.auto, o.HostConfig.AutoRemove)
	return client.ContainerCreateResult{ID: fmt.Sprintf("worker%d", len(f.created))}, nil
}

func (f *fakeEngine) goneC(id string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone == nil {
		f.gone = map[string]chan struct{}{}
	}
	if f.gone[id] == nil {
		f.gone[id] = make(chan struct{})
	}
	return f.gone[id]
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.removed++
	select {
	case <-f.goneC(id):
	default:
		close(f.goneC(id))
	}
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeEngine) ContainerAttach(context.Context, string, client.ContainerAttachOptions) (client.ContainerAttachResult, error) {
	a, b := net.Pipe()
	b.Close()
	return client.ContainerAttachResult{HijackedResponse: client.NewHijackedResponse(a, "")}, nil
}

// ContainerWait reports the container's removal (the worker never exits by itself here).
func (f *fakeEngine) ContainerWait(ctx context.Context, id string, o client.ContainerWaitOptions) client.ContainerWaitResult {
	f.waits++
	if o.Condition != container.WaitConditionRemoved {
		panic("the worker's end is watched with condition " + string(o.Condition))
	}
	res, errc := make(chan container.WaitResponse), make(chan error, 1)
	gone := f.goneC(id)
	go func() {
		select {
		case <-ctx.Done():
			errc <- ctx.Err()
		case <-gone:
			res <- container.WaitResponse{StatusCode: 137}
		}
	}()
	return client.ContainerWaitResult{Result: res, Error: errc}
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	if f.refusing && f.created[len(f.created)-1].IsContainer() {
		return client.ContainerStartResult{}, errors.New("cannot join network of a non running container")
	}
	f.started = append(f.started, id)
	return client.ContainerStartResult{}, nil
}

func TestWorkerNetwork(t *testing.T) {
	svc := &containers.Container{ID: "svc1", Name: "app-files-1", Running: true,
		Mounts: []container.MountPoint{{Type: mount.TypeVolume, Name: "app_data", Destination: "/data", RW: true}}}
	image := func(context.Context) (workerimage.Image, error) {
		return workerimage.Image{Ref: "docker-backup-worker:x"}, nil
	}
	for _, tc := range []struct {
		name     string
		running  bool
		write    bool
		refusing bool
		want     []container.NetworkMode
	}{
		{"backup of a running service joins its namespace", true, false, false, []container.NetworkMode{"container:svc1"}},
		{"backup of a stopped service", false, false, false, []container.NetworkMode{"none"}},
		{"restore", true, true, false, []container.NetworkMode{"none"}},
		{"the service stopped before the worker's start", true, false, true, []container.NetworkMode{"container:svc1", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{refusing: tc.refusing}
			c := *svc
			c.Running = tc.running
			r := &Runner{Engine: eng, Image: image, Owner: "test"}
			s, err := r.Open(context.Background(), &c, []string{"/data"}, strategy.WorkerAccess{Write: tc.write})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(eng.created) != fmt.Sprint(tc.want) {
				t.Errorf("workers created with networks %v, want %v", eng.created, tc.want)
			}
			if len(eng.started) != 1 || eng.started[0] != fmt.Sprintf("worker%d", len(tc.want)) {
				t.Errorf("started %v, want the last worker made", eng.started)
			}
			if eng.removed < len(tc.want) {
				t.Errorf("%d removals for %d workers made", eng.removed, len(tc.want))
			}
			// The engine removes a worker once it exits; its exit is watched from before
			// each start (after it, the exit code could be gone with the container).
			for i, auto := range eng.auto {
				if !auto {
					t.Errorf("worker %d made without AutoRemove", i+1)
				}
			}
			if eng.waits != len(tc.want) {
				t.Errorf("%d exits watched for %d starts", eng.waits, len(tc.want))
			}
			// Confined: every capability dropped but those of its work, a read-only root, no
			// new privileges; a restore's own staging volume is its only extra mount.
			for i, hc := range eng.hosts {
				want := "[CAP_DAC_OVERRIDE]"
				mounts := "[/data]"
				if tc.write {
					want, mounts = "[CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER CAP_FSETID]", "[/data "+extract.LocalStaging+"]"
				}
				var targets []string
				for _, m := range hc.Mounts {
					targets = append(targets, m.Target)
				}
				if fmt.Sprint(hc.CapDrop) != "[ALL]" || fmt.Sprint(hc.CapAdd) != want || !hc.ReadonlyRootfs ||
					fmt.Sprint(hc.SecurityOpt) != "[no-new-privileges]" || fmt.Sprint(targets) != mounts {
					t.Errorf("worker %d: CapDrop %v CapAdd %v (want %s) read-only %v %v mounts %v (want %s)",
						i+1, hc.CapDrop, hc.CapAdd, want, hc.ReadonlyRootfs, hc.SecurityOpt, targets, mounts)
				}
			}
		})
	}
}
