package worker

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Channel carries a worker's data to this process without the Engine's API: a unix socket in
// a directory that this process and the worker both see. Streams through dockerd (attach,
// exec) cost about as much CPU as the backup itself; a socket costs what a pipe does. When the
// engine cannot show the directory to the worker (a remote engine), the stored stream goes
// over the attach stream instead.
type Channel struct {
	// Dir is a directory of this process where each session makes its own directory.
	Dir string
	// Mount returns how the worker sees the session directory sess (a path under Dir): the
	// mount to add, and sess's path in the worker.
	Mount func(sess string) (mount.Mount, string)
}

// sessionPrefix begins a session directory's name, followed by the process's ID.
const sessionPrefix = "docker-backup-worker-"

// sweep removes the session directories in dir of processes that no longer run.
func sweep(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), sessionPrefix)
		pid, _, found := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if !ok || !found || err != nil || !e.IsDir() || n <= 0 {
			continue
		}
		if processGone(n) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// workerDir is where a worker sees its session directory: at the root of its own file system,
// where no mount of a service can hold it (a service's volume at /run would: the engine
// cannot make a mount point in it when it is mounted read-only, and leaves one behind in it
// when it is not).
const workerDir = "/.docker-backup-socket"

// HostChannel is the plugin's channel: a directory under the system's temporary directory,
// bind-mounted into the worker. The bind fails on an engine that does not share this file
// system (a remote one), and the attach stream is used.
// What killed plugins left there (a directory named after a process that is gone) is removed.
func HostChannel() *Channel {
	sweep(os.TempDir())
	return &Channel{Dir: os.TempDir(), Mount: func(sess string) (mount.Mount, string) {
		return mount.Mount{Type: mount.TypeBind, Source: sess, Target: workerDir}, workerDir
	}}
}

// ContainerChannel is the channel of a process in a container (the sidecar) whose dir is on a
// volume or bind mount of that container: each worker is given its own session directory of
// it and nothing else — a bind mount of that directory's place on the engine's host (the
// volume's directory there; API 1.41 has no volume subpaths), never the whole volume, which
// holds the sidecar's signing key, catalog and the other workers' sockets. dir must be this
// process's alone: it is emptied.
func ContainerChannel(ctx context.Context, engine interface {
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}, containerID, dir string) (*Channel, error) {
	if containerID == "" {
		return nil, fmt.Errorf("the sidecar's own container is unknown")
	}
	in, err := engine.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting the sidecar's container: %w", err)
	}
	dir = path.Clean(dir)
	var best *container.MountPoint
	for i, m := range in.Container.Mounts {
		d := path.Clean(m.Destination)
		if m.RW && (dir == d || strings.HasPrefix(dir, d+"/")) && (best == nil || len(d) > len(path.Clean(best.Destination))) {
			best = &in.Container.Mounts[i]
		}
	}
	if best == nil || (best.Type != mount.TypeVolume && best.Type != mount.TypeBind) {
		return nil, fmt.Errorf("%s is not on a volume of the sidecar's container", dir)
	}
	if !path.IsAbs(best.Source) {
		return nil, fmt.Errorf("the engine names no directory on its host for %s (%q)", path.Clean(best.Destination), best.Source)
	}
	// The directory is this process's alone: what a killed run left in it goes.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	dest, source := path.Clean(best.Destination), path.Clean(best.Source)
	return &Channel{Dir: dir, Mount: func(sess string) (mount.Mount, string) {
		rel, _ := filepath.Rel(dest, sess)
		return mount.Mount{Type: mount.TypeBind, Source: path.Join(source, filepath.ToSlash(rel)), Target: workerDir}, workerDir
	}}, nil
}
