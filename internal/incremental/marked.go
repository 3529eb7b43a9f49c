package incremental

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// IngestMarked adds the entries of an incremental worker's tar stream (tree.ArchiveIncremental
// of package worker/tree) to w, named by their entry names ("data/x"): a file the worker sent
// header-only as unchanged (meta.PAXUnchanged) takes its parent's content and extended
// attributes (parent: the parent snapshot's entries, looked up in the same walk order) with
// Writer.Reuse, reading nothing; every other file is chunked. A marked file whose parent entry
// is gone, differs, or whose content is no longer in the repository fails the backup (its
// bytes were not sent): the caller runs it again without a parent.
func IngestMarked(ctx context.Context, w *repo.Writer, stream io.Reader, parent *tree.Finder) error {
	tr := tar.NewReader(stream)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("incremental backup: reading the worker's stream: %w", err)
		}
		if err := ingestEntry(ctx, w, h, tr, parent); err != nil {
			return fmt.Errorf("incremental backup: %w", err)
		}
	}
}

func ingestEntry(ctx context.Context, w *repo.Writer, h *tar.Header, content io.Reader, parent *tree.Finder) error {
	p := strings.Trim(h.Name, "/")
	n, err := nodeOf(h)
	if err != nil {
		return fmt.Errorf("%q: %w", h.Name, err)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return w.AddDir(p, n)
	case tar.TypeReg:
		if size, ok := h.PAXRecords[meta.PAXUnchanged]; ok {
			return reuse(ctx, w, p, n, size, parent)
		}
		return w.AddFile(p, n, content)
	case tar.TypeLink:
		n.Type, n.LinkTarget = tree.Hardlink, strings.Trim(h.Linkname, "/")
	case tar.TypeSymlink:
		n.Type, n.LinkTarget = tree.Symlink, h.Linkname
	case tar.TypeFifo:
		n.Type = tree.FIFO
	case tar.TypeChar, tar.TypeBlock:
		n.Type, n.Rdev = tree.CharDev, tree.Mkdev(uint64(h.Devmajor), uint64(h.Devminor))
		if h.Typeflag == tar.TypeBlock {
			n.Type = tree.BlockDev
		}
	default:
		return fmt.Errorf("%q: tar entry type %q is not a directory, file, link, fifo or device", h.Name, h.Typeflag)
	}
	return w.AddNode(p, n)
}

// reuse adds a file marked unchanged with its parent's content.
func reuse(ctx context.Context, w *repo.Writer, p string, n tree.Node, size string, parent *tree.Finder) error {
	var err error
	if n.Size, err = strconv.ParseInt(size, 10, 64); err != nil || n.Size < 0 {
		return fmt.Errorf("%q: the unchanged marker %q is not a size", p, size)
	}
	if parent == nil {
		return fmt.Errorf("%q is marked unchanged, but the backup has no parent snapshot", p)
	}
	old, err := parent.Find(ctx, p)
	if err != nil {
		return err
	}
	n.Type = tree.File
	if !tree.Unchanged(old, &n) {
		return fmt.Errorf("%q is marked unchanged, but the parent snapshot's entry differs or is missing (allowed: unchanged size, mtime, ctime and inode)", p)
	}
	if n.Xattrs == nil {
		n.Xattrs = old.Xattrs // not read by the worker; a change of them changes ctime
	}
	if err := w.Reuse(p, n, old); err != nil {
		if errors.Is(err, repo.ErrNotInRepository) {
			return fmt.Errorf("%w: back up without a parent", err)
		}
		return err
	}
	return nil
}

// nodeOf is the tree entry of a header: mode, owners, times and the PAX records of identity.
func nodeOf(h *tar.Header) (tree.Node, error) {
	n := tree.Node{Type: tree.File, Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid), GID: uint32(h.Gid), Uname: h.Uname, Gname: h.Gname,
		Size: h.Size, MTime: h.ModTime, CTime: h.ChangeTime}
	for k, dst := range map[string]*uint64{meta.PAXInode: &n.Inode, meta.PAXDev: &n.Device, meta.PAXNlink: &n.NLink} {
		v, ok := h.PAXRecords[k]
		if !ok {
			continue
		}
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return n, fmt.Errorf("PAX record %s=%q is not a number", k, v)
		}
		*dst = x
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if n.Xattrs == nil {
				n.Xattrs = map[string][]byte{}
			}
			n.Xattrs[name] = []byte(v)
		}
	}
	return n, nil
}
