package containers

import (
	"path"

	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/moby/moby/api/types/container"
)

// HolderOf returns the mount of mounts that holds the path p (the deepest one), or nil.
func HolderOf(mounts []container.MountPoint, p string) *container.MountPoint {
	var holder *container.MountPoint
	for i, m := range mounts {
		d := path.Clean(m.Destination)
		if mountpath.Inside(p, d) && (holder == nil || len(d) > len(path.Clean(holder.Destination))) {
			holder = &mounts[i]
		}
	}
	return holder
}

// MountsBelow returns the mounts inside the path p other than its holder.
func MountsBelow(mounts []container.MountPoint, p string, holder *container.MountPoint) []container.MountPoint {
	var out []container.MountPoint
	for _, m := range mounts {
		if d := path.Clean(m.Destination); d != path.Clean(holder.Destination) && mountpath.Inside(d, p) {
			out = append(out, m)
		}
	}
	return out
}
