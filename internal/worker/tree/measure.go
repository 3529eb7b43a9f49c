//go:build linux

package tree

import (
	"context"
	"io/fs"
	"syscall"

	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// Measure is what a backup of paths holds and what excl leaves out of it, found as Archive
// walks them — the same mount boundaries, staging directories and sockets passed over, the
// same exclusions — from each entry's lstat alone: no file is opened or read. Below an
// excluded directory, which a backup does not enter, the walk goes on to count what it leaves
// out.
func Measure(ctx context.Context, paths, mounts []string, excl *exclude.Set) (*Measurement, error) {
	return MeasureRoots(ctx, rootsOf(paths), mounts, excl)
}

// MeasureRoots is Measure of roots (see ArchiveRoots).
func MeasureRoots(ctx context.Context, roots []Root, mounts []string, excl *exclude.Set) (*Measurement, error) {
	a := &archiver{ctx: ctx, mounts: mounts, exclude: excl, measure: newMeasuring()}
	if err := a.walkRoots(roots); err != nil {
		return nil, err
	}
	m := a.measure.Measurement
	return &m, nil
}

// measuring adds up a Measurement as the walk meets each entry.
type measuring struct {
	Measurement
	// kept are the hard-linked files of the path being walked whose content a backup holds
	// (once per path, as Archive stores it); left are those met only among what is left out,
	// with their size: their bytes are left out unless a kept name of theirs comes later.
	kept map[fileID]bool
	left map[fileID]int64
}

func newMeasuring() *measuring {
	return &measuring{kept: map[fileID]bool{}, left: map[fileID]int64{}}
}

// record adds the entry fi: to what the backup holds, or (out) to what it leaves out. An
// entry is one of Files whatever its type (as artifact.Contents counts them); a regular
// file's size is in Bytes once per group of hard links.
func (m *measuring) record(fi fs.FileInfo, out bool) {
	size, linked, id := int64(0), false, fileID{}
	if fi.Mode().IsRegular() {
		size = fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			linked, id = true, fileID{uint64(st.Dev), st.Ino}
		}
	}
	switch {
	case out && linked:
		m.ExcludedFiles++
		m.left[id] = size
	case out:
		m.ExcludedFiles++
		m.ExcludedBytes += size
	case linked:
		m.Files++
		if !m.kept[id] {
			m.kept[id] = true
			m.Bytes += size
		}
	default:
		m.Files++
		m.Bytes += size
	}
}

// settle ends a path: the hard-linked files met only among what was left out add their
// bytes to that, once each; the next path's links are its own.
func (m *measuring) settle() {
	for id, size := range m.left {
		if !m.kept[id] {
			m.ExcludedBytes += size
		}
	}
	m.kept, m.left = map[fileID]bool{}, map[fileID]int64{}
}
