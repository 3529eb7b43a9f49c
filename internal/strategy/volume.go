package strategy

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/moby/moby/api/types/mount"
)

// Volume archives directories (or files) of a container through the Engine's archive API,
// so it works on stopped containers and on images that have no tar or shell. By default it
// takes the container's named volumes and read-write bind mounts.
//
// The artifact is one tar stream whose entries are named by their absolute path in the
// container without the leading slash ("var/lib/app/data/x"), keeping contents, modes,
// ownership, times, symbolic links, hard links and empty directories. Restore writes each
// path back through the same API. Files created after the backup are left in place.
type Volume struct {
	paths []string // explicit paths; empty means the container's mounts
}

// NewVolume returns a volume strategy for the given absolute paths (none: the mounts).
func NewVolume(paths []string) (*Volume, error) {
	clean, err := cleanPaths(paths)
	if err != nil {
		return nil, err
	}
	return &Volume{paths: clean}, nil
}

// Name returns "volume".
func (v *Volume) Name() string { return "volume" }

// Extension returns "tar".
func (v *Volume) Extension() string { return "tar" }

// SourcePaths is the manifest key listing the backed-up paths, comma-separated.
const SourcePaths = "paths"

// DefaultPaths returns the mounts the volume strategy backs up when no paths are given:
// named volumes and read-write bind mounts, except sockets and the Docker socket's directory.
func DefaultPaths(c *containers.Container) []string {
	var out []string
	for _, m := range c.Mounts {
		switch {
		case m.Type == mount.TypeVolume:
		case m.Type == mount.TypeBind && m.RW:
		default:
			continue
		}
		d := m.Destination
		if strings.HasSuffix(d, ".sock") || d == "/var/run" || d == "/run" || strings.HasPrefix(d, "/run/") || strings.HasPrefix(d, "/var/run/") {
			continue
		}
		out = append(out, d)
	}
	clean, _ := cleanPaths(out)
	return clean
}

func (v *Volume) pathsFor(c *containers.Container) ([]string, error) {
	if len(v.paths) > 0 {
		return v.paths, nil
	}
	paths := DefaultPaths(c)
	if len(paths) == 0 {
		return nil, fmt.Errorf("the container has no volumes or read-write bind mounts: name what to back up with --paths /some/dir")
	}
	return paths, nil
}

// Backup writes one tar stream of all paths to w.
func (v *Volume) Backup(ctx context.Context, c *containers.Container, w io.Writer) (Source, error) {
	paths, err := v.pathsFor(c)
	if err != nil {
		return nil, stepErr(c, "copy", err)
	}
	tw := tar.NewWriter(w)
	for _, p := range paths {
		if err := copyPathOut(ctx, c, p, tw); err != nil {
			return nil, stepErr(c, "copy", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, stepErr(c, "copy", err)
	}
	return Source{SourcePaths: strings.Join(paths, ",")}, nil
}

// copyPathOut appends the archive of p to tw, renaming its entries from the archive API's
// "base/..." to "abs/path/...".
func copyPathOut(ctx context.Context, c *containers.Container, p string, tw *tar.Writer) error {
	rc, err := c.CopyFrom(ctx, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	base := path.Base(p)
	prefix := strings.TrimPrefix(p, "/")
	rename := func(name string) (string, error) {
		rest, ok := strings.CutPrefix(name, base)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			return "", fmt.Errorf("archive of %s has an unexpected entry %q", p, name)
		}
		return prefix + rest, nil
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive of %s: %w", p, err)
		}
		if hdr.Name, err = rename(hdr.Name); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = rename(hdr.Linkname); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copying %s: %w", hdr.Name, err)
		}
	}
}

// Restore writes every backed-up path back into the container. The container should not be
// running an application that writes to those paths; the engine stops it first.
func (v *Volume) Restore(ctx context.Context, c *containers.Container, data Data) error {
	paths, err := cleanPaths(strings.Split(data.Source[SourcePaths], ","))
	if err != nil || len(paths) == 0 {
		return stepErr(c, "restore", fmt.Errorf("the manifest lists no valid paths (%q)", data.Source[SourcePaths]))
	}
	// Longest first, so that a nested path wins over its parent.
	byLength := slices.Clone(paths)
	sort.Slice(byLength, func(i, j int) bool { return len(byLength[i]) > len(byLength[j]) })
	owner := func(name string) (string, bool) {
		for _, p := range byLength {
			pre := strings.TrimPrefix(p, "/")
			if name == pre || strings.HasPrefix(name, pre+"/") {
				return p, true
			}
		}
		return "", false
	}

	tr := tar.NewReader(data)
	var cur *pathWriter
	finish := func() error {
		if cur == nil {
			return nil
		}
		err := cur.close()
		cur = nil
		return err
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = finish()
			return stepErr(c, "restore", fmt.Errorf("reading the backup archive: %w", err))
		}
		if !isLocalName(hdr.Name) {
			_ = finish()
			return stepErr(c, "restore", fmt.Errorf("the archive entry %q is not a relative path inside the backed-up paths", hdr.Name))
		}
		p, ok := owner(strings.TrimSuffix(hdr.Name, "/"))
		if !ok {
			_ = finish()
			return stepErr(c, "restore", fmt.Errorf("the archive entry %q is outside the backed-up paths %s", hdr.Name, strings.Join(paths, ", ")))
		}
		if cur == nil || cur.path != p {
			if err := finish(); err != nil {
				return stepErr(c, "restore", err)
			}
			isDir := hdr.Typeflag == tar.TypeDir
			cur = newPathWriter(ctx, c, p, isDir)
		}
		if err := cur.write(hdr, tr); err != nil {
			_ = finish()
			return stepErr(c, "restore", err)
		}
	}
	return stepErr(c, "restore", finish())
}

// pathWriter streams the entries of one backed-up path into the container with one
// CopyToContainer call, extracted into the path's parent directory so that the owner and
// mode of the path itself (a volume's root) are restored too. On a read-only root file
// system the parent is not writable: a directory is then extracted onto itself, which
// restores everything below it but leaves the owner and mode of the directory itself.
type pathWriter struct {
	path   string
	prefix string // archive prefix of the path's entries
	dest   string
	onto   bool // extracting a directory onto itself: entries are named "./..."
	pw     *io.PipeWriter
	tw     *tar.Writer
	done   chan error
}

func newPathWriter(ctx context.Context, c *containers.Container, p string, isDir bool) *pathWriter {
	pr, pw := io.Pipe()
	w := &pathWriter{path: p, prefix: strings.TrimPrefix(p, "/"), pw: pw, tw: tar.NewWriter(pw), done: make(chan error, 1)}
	w.dest = path.Dir(p)
	if isDir && c.ReadonlyRootfs {
		w.dest = p
		w.onto = true
	}
	go func() {
		err := c.CopyTo(ctx, w.dest, pr)
		pr.CloseWithError(err) // unblock the writer if the daemon stopped reading
		w.done <- err
	}()
	return w
}

func (w *pathWriter) write(hdr *tar.Header, r io.Reader) error {
	rename := func(name string) string {
		rest := strings.TrimPrefix(name, w.prefix)
		if w.onto {
			return "." + rest
		}
		return path.Base(w.path) + rest
	}
	hdr.Name = rename(hdr.Name)
	if hdr.Typeflag == tar.TypeLink {
		if !isLocalName(hdr.Linkname) || !strings.HasPrefix(hdr.Linkname, w.prefix) {
			return fmt.Errorf("hard link %q points outside %s", hdr.Linkname, w.path)
		}
		hdr.Linkname = rename(hdr.Linkname)
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, w.daemonErr(err))
	}
	if _, err := io.Copy(w.tw, r); err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, w.daemonErr(err))
	}
	return nil
}

// daemonErr prefers the daemon's reason over the pipe's "closed pipe" when both failed.
func (w *pathWriter) daemonErr(err error) error {
	if errors.Is(err, io.ErrClosedPipe) {
		select {
		case derr := <-w.done:
			w.done <- derr
			if derr != nil {
				return derr
			}
		default:
		}
	}
	return err
}

func (w *pathWriter) close() error {
	err := w.tw.Close()
	w.pw.CloseWithError(err)
	if derr := <-w.done; derr != nil {
		return fmt.Errorf("restoring %s: %w", w.path, derr)
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, err)
	}
	return nil
}

// cleanPaths validates absolute container paths, cleans them, drops duplicates and paths
// inside another listed path (the parent's archive already holds them).
func cleanPaths(paths []string) ([]string, error) {
	var clean []string
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("path %q must be absolute (a path inside the container, like /data)", p)
		}
		c := path.Clean(p)
		if c == "/" {
			return nil, fmt.Errorf("path %q would back up the whole container file system: name its data directories instead", p)
		}
		clean = append(clean, c)
	}
	sort.Strings(clean)
	clean = slices.Compact(clean)
	var out []string
	for _, p := range clean {
		if !slices.ContainsFunc(out, func(parent string) bool { return strings.HasPrefix(p, parent+"/") }) {
			out = append(out, p)
		}
	}
	return out, nil
}

func isLocalName(name string) bool {
	name = strings.TrimSuffix(name, "/")
	if name == "" || strings.HasPrefix(name, "/") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}
