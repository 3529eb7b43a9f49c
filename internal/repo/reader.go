package repo

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Reader reads snapshots' trees and content; every blob is checked against its ID after it
// is decrypted and decompressed, and every pack against its hash.
type Reader struct {
	r     *Repo
	idx   *index.Index
	cache *packCache
}

// NewReader loads the index.
func (r *Repo) NewReader(ctx context.Context) (*Reader, error) {
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	return r.readerWith(idx), nil
}

func (r *Repo) readerWith(idx *index.Index) *Reader {
	return &Reader{r: r, idx: idx, cache: newPackCache(r, idx, 6)}
}

// Tree loads a tree blob.
func (rd *Reader) Tree(ctx context.Context, id blob.ID) (*tree.Tree, error) {
	b, err := rd.cache.blob(ctx, nil, id)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id, err)
	}
	t, err := tree.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id, err)
	}
	return t, nil
}

// WalkFunc is called for each entry, in tree order (a directory before its entries, entries
// by name); p is the entry's path in the snapshot. Returning SkipDir skips a directory.
type WalkFunc func(p string, n *tree.Node) error

// SkipDir makes Walk skip a directory's entries.
var SkipDir = fmt.Errorf("skip this directory")

// Walk visits every entry of the tree id.
func (rd *Reader) Walk(ctx context.Context, id blob.ID, fn WalkFunc) error {
	return rd.walk(ctx, "", id, fn)
}

func (rd *Reader) walk(ctx context.Context, dir string, id blob.ID, fn WalkFunc) error {
	t, err := rd.Tree(ctx, id)
	if err != nil {
		return fmt.Errorf("directory %q: %w", "/"+dir, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if err == SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == tree.Dir {
			if err := rd.walk(ctx, p, *n.Subtree, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Lookup finds the entry at path p in the tree root (nil when there is none).
func (rd *Reader) Lookup(ctx context.Context, root blob.ID, p string) (*tree.Node, error) {
	p, err := clean(p)
	if err != nil {
		return nil, err
	}
	id := root
	parts := strings.Split(p, "/")
	for i, name := range parts {
		t, err := rd.Tree(ctx, id)
		if err != nil {
			return nil, err
		}
		n, ok := t.Find(name)
		if !ok {
			return nil, nil
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != tree.Dir {
			return nil, nil
		}
		id = *n.Subtree
	}
	return nil, nil
}

// Content returns a reader of a file's content, blob by blob, each verified.
func (rd *Reader) Content(ctx context.Context, n *tree.Node) io.Reader {
	return &contentReader{ctx: ctx, rd: rd, ids: n.Content}
}

type contentReader struct {
	ctx context.Context
	rd  *Reader
	ids []blob.ID
	buf []byte
	off int
	err error
}

func (c *contentReader) Read(p []byte) (int, error) {
	for c.off == len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		if len(c.ids) == 0 {
			return 0, io.EOF
		}
		c.rd.cache.prefetch(c.ctx, c.ids, 3)
		c.buf, c.err = c.rd.cache.blob(c.ctx, c.buf[:0], c.ids[0])
		c.off = 0
		c.ids = c.ids[1:]
		if c.err != nil {
			c.buf = nil
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}
