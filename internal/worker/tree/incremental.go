//go:build linux

package tree

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// Incremental is what an incremental archive found.
type Incremental = meta.Stats

// RootsOf is the Root of each absolute path (as Archive reads them).
func RootsOf(paths []string) []Root { return rootsOf(paths) }

// incremental is the state of an incremental archive.
type incremental struct {
	parent *meta.Cursor // nil: no parent
	Incremental
}

// ArchiveIncremental writes the tar stream an incremental backup ingests (package
// incremental): Archive's walk and entries, roots in walk order (meta.Compare of their names,
// whatever order they come in), and every entry with PAX records of its change time ("ctime"),
// inode, device and link count (meta.PAXInode, PAXDev, PAXNlink). A regular file whose size,
// modification and change times and inode equal its record in parent (the parent snapshot's
// metadata, in walk order; nil: none) is not opened: its entry is header-only, with no
// content and meta.PAXUnchanged (its size). No tree digest is made (the snapshot is the
// record of the content).
func ArchiveIncremental(ctx context.Context, roots []Root, mounts []string, excl *exclude.Set, parent *meta.Cursor, w io.Writer) (*Incremental, error) {
	roots = slices.Clone(roots)
	slices.SortStableFunc(roots, func(a, b Root) int { return meta.Compare(a.Name, b.Name) })
	tw := tar.NewWriter(w)
	a := &archiver{ctx: ctx, tw: tw, mounts: mounts, exclude: excl, buf: make([]byte, 256<<10), incr: &incremental{parent: parent}}
	if err := a.walkRoots(roots); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &a.incr.Incremental, nil
}

// header adds the incremental PAX records to hdr (the entry of fi) and reports whether a
// regular file is unchanged since the parent: its header is then all it sends.
func (in *incremental) header(hdr *tar.Header, st *syscall.Stat_t) (unchanged bool, err error) {
	in.Files++
	if st == nil {
		return false, nil
	}
	if hdr.PAXRecords == nil {
		hdr.PAXRecords = map[string]string{}
	}
	hdr.ChangeTime = time.Unix(st.Ctim.Unix())
	hdr.PAXRecords[meta.PAXInode] = meta.FormatInt(st.Ino)
	hdr.PAXRecords[meta.PAXDev] = meta.FormatInt(uint64(st.Dev))
	hdr.PAXRecords[meta.PAXNlink] = meta.FormatInt(uint64(st.Nlink))
	if hdr.Typeflag != tar.TypeReg {
		return false, nil
	}
	in.Bytes += hdr.Size
	if in.parent == nil {
		in.Read++
		return false, nil
	}
	rec, err := in.parent.Find(trimSlash(hdr.Name))
	if err != nil {
		return false, err
	}
	if rec == nil || !rec.Unchanged(hdr.Size, hdr.ModTime, hdr.ChangeTime, st.Ino) {
		in.Read++
		return false, nil
	}
	in.Unchanged++
	in.UnchangedBytes += hdr.Size
	hdr.PAXRecords[meta.PAXUnchanged] = strconv.FormatInt(hdr.Size, 10)
	hdr.Size = 0
	return true, nil
}

// addUnchanged writes the header-only entry of an unchanged file.
func (a *archiver) addUnchanged(hdr *tar.Header, abs string) error {
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archiving %s: %w", abs, err)
	}
	return nil
}

// copyContent writes a regular file's content (f; nil for other entries) after its header.
func (a *archiver) copyContent(f *os.File, hdr *tar.Header, abs string) error {
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	n, err := io.CopyBuffer(a.tw, struct{ io.Reader }{f}, a.buf)
	if err != nil {
		if errors.Is(err, tar.ErrWriteTooLong) {
			return fmt.Errorf("%s grew while it was archived (stop the service during backups: --stop)", abs)
		}
		return fmt.Errorf("archiving %s: %w", abs, err)
	}
	if n < hdr.Size {
		return fmt.Errorf("%s shrank while it was archived (%d of %d bytes; stop the service during backups: --stop)", abs, n, hdr.Size)
	}
	return nil
}
