// Package incremental turns a strategy's raw stream into a snapshot: a volume's tar stream
// becomes the snapshot's files (paths, modes, owners, times, links, extended attributes from
// PAX records), a dump's stream one file. It is the one place that reads a tar stream into a
// repo.Writer.
package incremental

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// xattrPrefix starts the PAX records of extended attributes (as GNU tar and Go write them).
const xattrPrefix = "SCHILY.xattr."

// Ingest adds the entries of the tar stream r to w, in the stream's order (a directory
// before its entries, as a directory walk writes them). parent finds the parent snapshot's
// entries (nil: no parent); plain tar entries carry no proof that a file is unchanged, so
// every file's content is read here (its chunks are still deduplicated against the
// repository).
func Ingest(ctx context.Context, w *repo.Writer, r io.Reader, parent *tree.Finder) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		if err := add(w, tr, hdr); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
}

// add adds one entry, reading a regular file's content from tr.
func add(w *repo.Writer, tr io.Reader, hdr *tar.Header) error {
	name := strings.TrimPrefix(hdr.Name, "./")
	n, err := NodeOf(hdr)
	if err != nil {
		return err
	}
	switch n.Type {
	case tree.Dir:
		return w.AddDir(name, n)
	case tree.File:
		return w.AddFile(name, n, tr)
	default:
		return w.AddNode(name, n)
	}
}

// NodeOf is the snapshot entry of a tar header (its content not included).
func NodeOf(hdr *tar.Header) (tree.Node, error) {
	n := tree.Node{Mode: uint32(hdr.Mode) & 0o7777, UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), Uname: hdr.Uname, Gname: hdr.Gname,
		Size: hdr.Size, MTime: hdr.ModTime, ATime: hdr.AccessTime, CTime: hdr.ChangeTime}
	switch hdr.Typeflag {
	//lint:ignore SA1019 the form old tar writers still put in a header
	case tar.TypeReg, tar.TypeRegA:
		n.Type = tree.File
	case tar.TypeDir:
		n.Type, n.Size = tree.Dir, 0
	case tar.TypeSymlink:
		n.Type, n.LinkTarget = tree.Symlink, hdr.Linkname
	case tar.TypeLink:
		target, err := tree.CleanPath(strings.TrimPrefix(hdr.Linkname, "./"))
		if err != nil || target == "" {
			return n, fmt.Errorf("hard link to %q: not a path inside the archive", hdr.Linkname)
		}
		n.Type, n.LinkTarget, n.Size = tree.Hardlink, target, 0
	case tar.TypeFifo:
		n.Type = tree.FIFO
	case tar.TypeChar, tar.TypeBlock:
		n.Type = tree.CharDev
		if hdr.Typeflag == tar.TypeBlock {
			n.Type = tree.BlockDev
		}
		n.Rdev = tree.Mkdev(uint64(hdr.Devmajor), uint64(hdr.Devminor))
	default:
		return n, fmt.Errorf("tar entry type %q is not a file, directory, link, fifo or device", hdr.Typeflag)
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if n.Xattrs == nil {
				n.Xattrs = map[string][]byte{}
			}
			n.Xattrs[name] = []byte(v)
		}
	}
	return n, nil
}

// IngestStream adds a dump's raw stream as the snapshot's one file, name.
func IngestStream(ctx context.Context, w *repo.Writer, name string, r io.Reader, at time.Time) error {
	if err := w.AddFile(name, tree.Node{Mode: 0o600, MTime: at}, &ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("the dump stream: %w", err)
	}
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
