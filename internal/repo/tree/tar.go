package tree

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
)

// TarSink writes a restore as a PAX tar stream, like a full backup's archive.
type TarSink struct {
	tw *tar.Writer
}

// NewTarSink writes to w; Close it to finish the archive.
func NewTarSink(w io.Writer) *TarSink { return &TarSink{tw: tar.NewWriter(w)} }

// Close writes the archive's end.
func (t *TarSink) Close() error { return t.tw.Close() }

// Entry writes one entry.
func (t *TarSink) Entry(ctx context.Context, p string, n *Node, content io.Reader) error {
	h := &tar.Header{Name: p, Mode: int64(n.Mode & 0o7777), Uid: int(n.UID), Gid: int(n.GID), Uname: n.Uname, Gname: n.Gname,
		ModTime: n.MTime, Format: tar.FormatPAX}
	if !n.ATime.IsZero() {
		h.AccessTime = n.ATime
	}
	if !n.CTime.IsZero() {
		h.ChangeTime = n.CTime
	}
	switch n.Type {
	case File:
		h.Typeflag, h.Size = tar.TypeReg, n.Size
	case Dir:
		h.Typeflag, h.Name = tar.TypeDir, p+"/"
	case Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, n.LinkTarget
	case Hardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, n.LinkTarget
	case FIFO:
		h.Typeflag = tar.TypeFifo
	case CharDev, BlockDev:
		h.Typeflag = tar.TypeChar
		if n.Type == BlockDev {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(Major(n.Rdev)), int64(Minor(n.Rdev))
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
