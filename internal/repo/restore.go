package repo

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Sink receives a restore's entries in tree order (a directory before its entries, entries
// by name). content streams a regular file's bytes (nil for other entries); a hard link's
// LinkTarget names an entry the sink already received.
type Sink interface {
	Entry(ctx context.Context, p string, n *tree.Node, content io.Reader) error
}

// Restore streams the snapshot's entries under paths (all when empty) to sink, reading every
// pack at most once while it is cached and verifying every blob. A refused or damaged blob
// fails the restore before its bytes reach the sink.
func (rd *Reader) Restore(ctx context.Context, s *Snapshot, paths []string, sink Sink) error {
	var sel []string
	for _, p := range paths {
		c, err := clean(p)
		if err != nil {
			return err
		}
		if c == "" {
			sel = nil
			break
		}
		sel = append(sel, c)
	}
	hl := hardlinks{emitted: map[string]bool{}, movedTo: map[string]string{}}
	err := rd.Walk(ctx, s.Tree, func(p string, n *tree.Node) error {
		in, descend := selected(sel, p)
		if !in && !descend {
			return SkipDir
		}
		if !in && n.Type != tree.Dir {
			return nil
		}
		return rd.emit(ctx, s, p, n, sink, &hl)
	})
	if err != nil {
		return fmt.Errorf("restoring snapshot %s: %w", short(s.ID), err)
	}
	return nil
}

// selected: whether p is selected, and whether it is an ancestor of a selected path.
func selected(sel []string, p string) (in, ancestor bool) {
	if len(sel) == 0 {
		return true, true
	}
	for _, s := range sel {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true, true
		}
		if strings.HasPrefix(s, p+"/") {
			ancestor = true
		}
	}
	return false, ancestor
}

// hardlinks keeps hard links restorable in tree order: a link met before its target (entries
// are sorted by name) carries the content, and the target becomes a link to it.
type hardlinks struct {
	emitted map[string]bool   // files with several links, emitted
	movedTo map[string]string // target → the path that carries its content
}

func (rd *Reader) emit(ctx context.Context, s *Snapshot, p string, n *tree.Node, sink Sink, hl *hardlinks) error {
	switch {
	case n.Type == tree.File && hl.movedTo[p] != "":
		link := *n
		link.Type, link.LinkTarget, link.Content = tree.Hardlink, hl.movedTo[p], nil
		return sink.Entry(ctx, p, &link, nil)
	case n.Type == tree.File:
		if n.NLink > 1 {
			hl.emitted[p] = true
		}
		return sink.Entry(ctx, p, n, rd.Content(ctx, n))
	case n.Type == tree.Hardlink && !hl.emitted[n.LinkTarget] && hl.movedTo[n.LinkTarget] == "":
		target, err := rd.Lookup(ctx, s.Tree, n.LinkTarget)
		if err != nil {
			return err
		}
		if target == nil || target.Type != tree.File {
			return fmt.Errorf("hard link %q: its target %q is not a file in the snapshot", p, n.LinkTarget)
		}
		hl.movedTo[n.LinkTarget] = p
		file := *target
		file.Name = n.Name
		return sink.Entry(ctx, p, &file, rd.Content(ctx, &file))
	case n.Type == tree.Hardlink && hl.movedTo[n.LinkTarget] != "":
		link := *n
		link.LinkTarget = hl.movedTo[n.LinkTarget]
		return sink.Entry(ctx, p, &link, nil)
	}
	return sink.Entry(ctx, p, n, nil)
}

func short(id string) string { return id[:min(12, len(id))] }

// TarSink writes a restore as a PAX tar stream, like a full backup's archive.
type TarSink struct {
	tw *tar.Writer
}

// NewTarSink writes to w; Close it to finish the archive.
func NewTarSink(w io.Writer) *TarSink { return &TarSink{tw: tar.NewWriter(w)} }

// Close writes the archive's end.
func (t *TarSink) Close() error { return t.tw.Close() }

// Entry writes one entry.
func (t *TarSink) Entry(ctx context.Context, p string, n *tree.Node, content io.Reader) error {
	h := &tar.Header{Name: p, Mode: int64(n.Mode & 0o7777), Uid: int(n.UID), Gid: int(n.GID), Uname: n.Uname, Gname: n.Gname,
		ModTime: n.MTime, Format: tar.FormatPAX}
	if !n.ATime.IsZero() {
		h.AccessTime = n.ATime
	}
	if !n.CTime.IsZero() {
		h.ChangeTime = n.CTime
	}
	switch n.Type {
	case tree.File:
		h.Typeflag, h.Size = tar.TypeReg, n.Size
	case tree.Dir:
		h.Typeflag, h.Name = tar.TypeDir, p+"/"
	case tree.Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, n.LinkTarget
	case tree.Hardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, n.LinkTarget
	case tree.FIFO:
		h.Typeflag = tar.TypeFifo
	case tree.CharDev, tree.BlockDev:
		h.Typeflag = tar.TypeChar
		if n.Type == tree.BlockDev {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(n.Rdev)), int64(unix.Minor(n.Rdev))
	}
	for k, v := range n.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%q: %w", p, err)
	}
	if content == nil {
		return nil
	}
	if _, err := io.Copy(t.tw, content); err != nil {
		return fmt.Errorf("%q: %w", p, err)
	}
	return nil
}

// Export writes the snapshot as a tar stream (what a full backup's archive holds).
func (rd *Reader) Export(ctx context.Context, s *Snapshot, w io.Writer) error {
	ts := NewTarSink(w)
	if err := rd.Restore(ctx, s, nil, ts); err != nil {
		return err
	}
	return ts.Close()
}
