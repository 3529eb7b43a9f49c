//go:build linux

package inplace

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestLocalRoots(t *testing.T) {
	const root = "/var/lib/docker"
	vol := func(name, dest string) container.MountPoint {
		return container.MountPoint{Type: mount.TypeVolume, Name: name, Source: root + "/volumes/" + name + "/_data", Destination: dest, RW: true}
	}
	mounts := []container.MountPoint{
		vol("app_data", "/data"),
		vol("app_nfs", "/nfs"),
		vol("app_inner", "/data/inner"),
		{Type: mount.TypeBind, Source: "/srv/conf", Destination: "/conf", RW: true},
		{Type: mount.TypeVolume, Name: "app_moved", Source: "/elsewhere/_data", Destination: "/moved"},
		vol("app_cfg", "/cfg"),
	}
	plain := map[string]bool{"app_data": true, "app_inner": true, "app_moved": true, "app_cfg": true}

	roots, sources, err := localRoots(mounts, []string{"/cfg", "/data/inner/sub/dir"}, root, plain)
	if err != nil {
		t.Fatal(err)
	}
	want := []tree.Root{
		{Dir: root + "/volumes/app_cfg", Rel: "_data", Name: "cfg"},
		{Dir: root + "/volumes/app_inner", Rel: "_data/sub/dir", Name: "data/inner/sub/dir"},
	}
	if len(roots) != 2 || roots[0] != want[0] || roots[1] != want[1] {
		t.Errorf("roots %+v, want %+v", roots, want)
	}
	if len(sources) != 2 || sources[0] != root+"/volumes/app_cfg/_data" || sources[1] != root+"/volumes/app_inner/_data" {
		t.Errorf("sources %v", sources)
	}

	for _, c := range []struct{ path, says string }{
		{"/data", "holds another mount, /data/inner"},           // a volume mounted inside it
		{"/nfs/x", "not a plain directory of the local driver"}, // options (NFS), or another driver
		{"/conf", "on a bind mount"},
		{"/moved", "is at /elsewhere/_data"},
		{"/etc", "not on a volume"},
	} {
		if _, _, err := localRoots(mounts, []string{"/cfg", c.path}, root, plain); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.path, err, c.says)
		}
	}
}
