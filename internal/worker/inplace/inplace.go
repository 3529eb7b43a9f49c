//go:build linux

// Package inplace is the plugin's backup of plain local volumes read in this process, on the
// engine's own host: no worker container, the same archive code as a worker's (package agent).
package inplace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// Engine is the part of the Engine API a Reader uses.
type Engine interface {
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	VolumeInspect(ctx context.Context, volumeID string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
}

// Reader reads the volumes of a backup itself, in this process, when the Engine runs on this
// host and its volumes are plain directories this process can read: no worker container is
// started (that start and its removal are most of what a worker adds to a backup). Below
// each volume's directory nothing is followed (see tree.ArchiveRoots). Restores always go
// through a worker container, which sees nothing but the service's volumes.
type Reader struct {
	Engine Engine

	mu      sync.Mutex
	checked bool
	root    string // the Engine's root directory, when it is this host's
	why     error  // why the Engine's files are not read here
}

// Open returns a session reading paths of c on this host; an error says why they cannot be
// (nothing was changed).
func (l *Reader) Open(ctx context.Context, c *containers.Container, paths []string) (strategy.WorkerSession, error) {
	root, err := l.engineRoot(ctx)
	if err != nil {
		return nil, err
	}
	// The Engine's directory of this very container is here: its files are this host's.
	if _, err := os.Stat(path.Join(root, "containers", c.ID, "config.v2.json")); err != nil {
		return nil, fmt.Errorf("the Engine's files of %s are not on this host's file system (%v)", c.Name, err)
	}
	volumes := map[string]bool{}
	for _, m := range c.Mounts {
		if m.Type != mount.TypeVolume || volumes[m.Name] {
			continue
		}
		in, err := l.Engine.VolumeInspect(ctx, m.Name, client.VolumeInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("inspecting the volume %s: %w", m.Name, err)
		}
		v := in.Volume
		volumes[m.Name] = v.Driver == "local" && len(v.Options) == 0 && path.Clean(v.Mountpoint) == volumeDir(root, m.Name)
	}
	roots, sources, err := localRoots(c.Mounts, paths, root, volumes)
	if err != nil {
		return nil, err
	}
	for _, dir := range sources {
		if err := unix.Access(dir, unix.R_OK|unix.X_OK); err != nil {
			return nil, fmt.Errorf("%s cannot be read here (%v)", dir, err)
		}
	}
	return &session{roots: roots, mounts: sources}, nil
}

// engineRoot returns the Engine's root directory once it is known to be this host's, asking
// the Engine once: a Linux engine without user namespaces (whose files' owners are not those
// its containers see).
func (l *Reader) engineRoot(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked {
		return l.root, l.why
	}
	info, err := l.Engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its root directory: %w", err)
	}
	l.checked = true
	in := info.Info
	for _, o := range in.SecurityOptions {
		if strings.Contains(o, "name=userns") || strings.Contains(o, "name=rootless") {
			l.why = fmt.Errorf("the engine maps its containers' users (%s)", o)
			return "", l.why
		}
	}
	switch {
	case in.OSType != "linux":
		l.why = fmt.Errorf("the engine runs %q", in.OSType)
	case !path.IsAbs(in.DockerRootDir):
		l.why = fmt.Errorf("the engine names no root directory (%q)", in.DockerRootDir)
	default:
		l.root = path.Clean(in.DockerRootDir)
	}
	return l.root, l.why
}

// volumeDir is where the local driver keeps a volume's files.
func volumeDir(root, name string) string { return path.Join(root, "volumes", name, "_data") }

// localRoots maps paths (in the container of mounts) to what Archive reads on the host: each
// path must be on a volume that plain (volumes: whether the volume is a plain directory of
// the local driver in root/volumes), with no other mount below it. It returns the roots and
// the volumes' directories.
func localRoots(mounts []container.MountPoint, paths []string, root string, plain map[string]bool) ([]tree.Root, []string, error) {
	var roots []tree.Root
	var sources []string
	for _, p := range paths {
		p = path.Clean(p)
		holder := containers.HolderOf(mounts, p)
		switch {
		case holder == nil:
			return nil, nil, fmt.Errorf("%s is not on a volume", p)
		case holder.Type != mount.TypeVolume:
			return nil, nil, fmt.Errorf("%s is on a %s mount", p, holder.Type)
		case strings.Contains(holder.Name, "/") || !plain[holder.Name]:
			return nil, nil, fmt.Errorf("%s is on the volume %s, which is not a plain directory of the local driver", p, holder.Name)
		}
		dir := volumeDir(root, holder.Name)
		if path.Clean(holder.Source) != dir {
			return nil, nil, fmt.Errorf("the volume %s is at %s, not %s", holder.Name, holder.Source, dir)
		}
		if below := containers.MountsBelow(mounts, p, holder); len(below) > 0 {
			return nil, nil, fmt.Errorf("%s holds another mount, %s", p, path.Clean(below[0].Destination))
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(holder.Destination)), "/")
		roots = append(roots, tree.Root{Dir: path.Dir(dir), Rel: path.Join(path.Base(dir), rel), Name: strings.TrimPrefix(p, "/")})
		sources = append(sources, dir)
	}
	return roots, sources, nil
}

// session is a backup (or a count) read in this process.
type session struct {
	roots  []tree.Root
	mounts []string // the volumes' directories: a staged restore's directory in one is skipped
}

// DataPath says that this process read the files itself.
func (s *session) DataPath() string { return volume.DataPathHost }

func (s *session) Start(context.Context) error { return nil }

// Backup writes the stored stream of the roots to out: into a directory target's new file
// directly (as a worker given its descriptor does), else through out.
func (s *session) Backup(ctx context.Context, req strategy.WorkRequest, out io.Writer, progress func(int64)) (*artifact.Contents, error) {
	var file *os.File
	sink, toFile := out.(strategy.FileSink)
	if toFile {
		file = sink.File()
	}
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return nil, err
	}
	contents, wrote, err := agent.BackupRoots(ctx, s.roots, s.mounts, excl, req.Compression, req.Recipients, out, file, progress)
	if err != nil {
		return nil, err
	}
	if toFile {
		if err := sink.Wrote(wrote.Size, wrote.SHA256, wrote.Chunks); err != nil {
			return nil, err
		}
	}
	return contents, nil
}

// Count digests the roots as Backup does, and writes nothing.
func (s *session) Count(ctx context.Context, patterns []string) (*artifact.Contents, error) {
	excl, err := exclude.Compile(patterns)
	if err != nil {
		return nil, err
	}
	return tree.ArchiveRoots(ctx, s.roots, s.mounts, excl, io.Discard)
}

// Measure adds up the roots as Backup would walk them, reading no file.
func (s *session) Measure(ctx context.Context, patterns []string) (*strategy.Sizes, error) {
	excl, err := exclude.Compile(patterns)
	if err != nil {
		return nil, err
	}
	m, err := tree.MeasureRoots(ctx, s.roots, s.mounts, excl)
	if err != nil {
		return nil, err
	}
	return &strategy.Sizes{Files: m.Files, Bytes: m.Bytes, ExcludedFiles: m.ExcludedFiles, ExcludedBytes: m.ExcludedBytes}, nil
}

var errLocalRestore = errors.New("restores go through a worker container")

func (s *session) Restore(context.Context, strategy.WorkRequest, io.Reader, func(int64)) error {
	return errLocalRestore
}

func (s *session) Stage(context.Context, strategy.WorkRequest, io.Reader, func(int64)) error {
	return errLocalRestore
}

func (s *session) Commit(context.Context) error { return errLocalRestore }

func (s *session) Close() error { return nil }
