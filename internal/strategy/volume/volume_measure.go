package volume

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Size is what a volume backup of a container would hold, as Measure finds it: walked by a
// worker (or in place) as a backup walks the paths, or, when no worker may read them, the
// Engine's own figure for each path that is a whole named volume.
type Size struct {
	Paths   []string
	Exclude []string // the patterns measured
	// Measured are the walked sizes (nil: not walked; see Volumes and Why).
	Measured *strategy.Sizes
	// Volumes are each path's size as the Engine gives it, when not walked.
	Volumes []PathSize
	// Why says why the paths were not walked (the worker off, or unable to run).
	Why string
}

// PathSize is one path's size from the Engine: Bytes of the named volume Volume, or Unknown
// saying why there is none.
type PathSize struct {
	Path    string
	Volume  string
	Bytes   int64
	Unknown string
}

// DiskUsager is the part of the Engine API that gives volumes' sizes (GET /system/df).
type DiskUsager interface {
	DiskUsage(ctx context.Context, options client.DiskUsageOptions) (client.DiskUsageResult, error)
}

// VolumeUsage is the Engine's size of each of its volumes, asked once (the Engine walks
// every volume to answer): the local driver's volumes only.
type VolumeUsage struct {
	API DiskUsager

	once  sync.Once
	sizes map[string]int64
	err   error
}

// Of is the size of the named volume; ok is false when the Engine does not know it.
func (u *VolumeUsage) Of(ctx context.Context, name string) (size int64, ok bool, err error) {
	u.once.Do(func() {
		res, err := u.API.DiskUsage(ctx, client.DiskUsageOptions{Volumes: true, Verbose: true})
		if err != nil {
			u.err = fmt.Errorf("asking the Engine for its volumes' sizes: %w", err)
			return
		}
		u.sizes = map[string]int64{}
		for _, v := range res.Volumes.Items {
			if v.UsageData != nil && v.UsageData.Size >= 0 {
				u.sizes[v.Name] = v.UsageData.Size
			}
		}
	})
	if u.err != nil {
		return 0, false, u.err
	}
	size, ok = u.sizes[name]
	return size, ok, nil
}

// Measure is what a backup of c would hold and what the exclusions leave out, walked by the
// worker (in place when it can, else a worker container mounting c's volumes: c may be
// stopped) from each entry's metadata alone — no file is read, nothing crosses the Engine's
// API. Without a worker (none configured, or none can run and none is required) the data is
// not streamed through the Engine to measure it: usage gives the size of each path that is
// a whole named volume, and Size.Why says the rest needs the worker.
func (v *Strategy) Measure(ctx context.Context, c *containers.Container, usage *VolumeUsage) (*Size, error) {
	paths, err := v.pathsFor(c)
	if err != nil {
		return nil, err
	}
	size := &Size{Paths: paths, Exclude: v.exclude.Patterns()}
	why := "the worker is off (DOCKER_BACKUP_WORKER=off)"
	if v.Worker != nil {
		s, err := v.Worker.Open(ctx, c, paths, strategy.WorkerAccess{})
		switch {
		case err == nil:
			defer s.Close()
			if size.Measured, err = s.Measure(ctx, size.Exclude); err != nil {
				return nil, err
			}
			return size, nil
		case !errors.Is(err, strategy.ErrNoWorker) || v.RequireWorker:
			return nil, fmt.Errorf("starting a worker to measure the paths: %w", err)
		}
		why = "no worker can run: " + strings.TrimPrefix(err.Error(), strategy.ErrNoWorker.Error()+": ")
	}
	size.Why = why
	size.Volumes, err = engineSizes(ctx, c, paths, usage)
	return size, err
}

// engineSizes is the Engine's size of each path that is a whole named volume, and why
// there is none for the others.
func engineSizes(ctx context.Context, c *containers.Container, paths []string, usage *VolumeUsage) ([]PathSize, error) {
	var out []PathSize
	for _, p := range paths {
		ps := PathSize{Path: p}
		holder := containers.HolderOf(c.Mounts, p)
		switch {
		case holder == nil:
			ps.Unknown = "not on a volume: size unknown without the worker"
		case holder.Type == mount.TypeBind:
			ps.Unknown = "a bind mount: size unknown without the worker"
		case holder.Type != mount.TypeVolume:
			ps.Unknown = fmt.Sprintf("a %s mount: size unknown without the worker", holder.Type)
		case path.Clean(holder.Destination) != p:
			ps.Unknown = fmt.Sprintf("a part of the volume %s: size unknown without the worker", holder.Name)
		default:
			ps.Volume = holder.Name
			size, ok, err := usage.Of(ctx, holder.Name)
			if err != nil {
				return nil, err
			}
			if ps.Bytes = size; !ok {
				ps.Unknown = fmt.Sprintf("the Engine gives no size of the volume %s (only of the local driver's): size unknown without the worker", holder.Name)
			}
		}
		out = append(out, ps)
	}
	return out, nil
}
