package incremental

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
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
//
// It returns what the backup holds, counted as a full backup's stream is (artifact.TreeDigest:
// entries, bytes and the tree digest), an unchanged file by its parent's content hash; nil when
// a parent's entry has no content hash (made by an older version).
func IngestMarked(ctx context.Context, w *repo.Writer, stream io.Reader, parent *tree.Finder) (*artifact.Contents, error) {
	tr := tar.NewReader(stream)
	c := &counted{complete: true}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return c.contents(), nil
		}
		if err != nil {
			return nil, fmt.Errorf("incremental backup: reading the worker's stream: %w", err)
		}
		if err := ingestEntry(ctx, w, h, tr, parent, c); err != nil {
			return nil, fmt.Errorf("incremental backup: %w", err)
		}
	}
}

// counted digests the entries as the volume strategy's count of a tar stream does.
type counted struct {
	t        artifact.TreeDigest
	complete bool // every file's content hash is known
}

func (c *counted) contents() *artifact.Contents {
	if !c.complete {
		return nil
	}
	return &artifact.Contents{Files: c.t.Files, Bytes: c.t.Bytes, Tree: c.t.Sum()}
}

// entry counts the entry of h (its file content apart).
func (c *counted) entry(h *tar.Header, name string) {
	mode, uid, gid := h.Mode, h.Uid, h.Gid
	switch h.Typeflag {
	case tar.TypeDir:
		c.t.Add(artifact.EntryDir, name, mode, uid, gid, "")
	case tar.TypeReg, tar.TypeLink:
		c.t.Add(artifact.EntryFile, name, mode, uid, gid, "")
	case tar.TypeSymlink:
		c.t.Add(artifact.EntrySymlink, name, mode, uid, gid, h.Linkname)
	default:
		c.t.Add(artifact.EntryOther, name, mode, uid, gid, fmt.Sprintf("%c %d %d", h.Typeflag, h.Devmajor, h.Devminor))
	}
}

func ingestEntry(ctx context.Context, w *repo.Writer, h *tar.Header, content io.Reader, parent *tree.Finder, c *counted) error {
	p := strings.Trim(h.Name, "/")
	n, err := nodeOf(h)
	if err != nil {
		return fmt.Errorf("%q: %w", h.Name, err)
	}
	c.entry(h, strings.TrimPrefix(path.Clean("/"+h.Name), "/"))
	switch h.Typeflag {
	case tar.TypeDir:
		return w.AddDir(p, n)
	case tar.TypeReg:
		size, sum := n.Size, uint64(0)
		if marker, ok := h.PAXRecords[meta.PAXUnchanged]; ok {
			var old *tree.Node
			if old, err = reuse(ctx, w, p, n, marker, parent); old != nil {
				size, sum = old.Size, old.ContentHash
			}
		} else {
			sum, err = w.AddFileHashed(p, n, content)
		}
		if sum == 0 {
			c.complete = false
		}
		c.t.AddContent(size, sum)
		return err
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
// It returns the parent's entry.
func reuse(ctx context.Context, w *repo.Writer, p string, n tree.Node, size string, parent *tree.Finder) (*tree.Node, error) {
	var err error
	if n.Size, err = strconv.ParseInt(size, 10, 64); err != nil || n.Size < 0 {
		return nil, fmt.Errorf("%q: the unchanged marker %q is not a size", p, size)
	}
	if parent == nil {
		return nil, fmt.Errorf("%q is marked unchanged, but the backup has no parent snapshot", p)
	}
	old, err := parent.Find(ctx, p)
	if err != nil {
		return nil, err
	}
	n.Type = tree.File
	if !tree.Unchanged(old, &n) {
		return nil, fmt.Errorf("%q is marked unchanged, but the parent snapshot's entry differs or is missing (allowed: unchanged size, mtime, ctime and inode)", p)
	}
	if n.Xattrs == nil {
		n.Xattrs = old.Xattrs // not read by the worker; a change of them changes ctime
	}
	if err := w.Reuse(p, n, old); err != nil {
		if errors.Is(err, repo.ErrNotInRepository) {
			return nil, fmt.Errorf("%w: back up without a parent", err)
		}
		return nil, err
	}
	return old, nil
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
