package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/blobs"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Reader reads snapshots' trees and content; every blob is checked against its ID after it
// is decrypted and decompressed, and every pack against its hash.
type Reader struct {
	r     *Repo
	idx   *index.Index
	cache *blobs.Cache
}

// NewReader loads the index.
func (r *Repo) NewReader(ctx context.Context) (*Reader, error) {
	idx, _, err := r.loadIndex(ctx, indexLenient, nil)
	if err != nil {
		return nil, err
	}
	return r.readerWith(idx), nil
}

func (r *Repo) readerWith(idx *index.Index) *Reader {
	return &Reader{r: r, idx: idx, cache: blobs.New(r.keys, idx, 6, func(ctx context.Context, id blob.ID, size int64) ([]byte, error) {
		return r.fetchPack(ctx, id, size, false)
	})}
}

// Index is the index the reader reads by.
func (rd *Reader) Index() *index.Index { return rd.idx }

// Tree loads a tree blob.
func (rd *Reader) Tree(ctx context.Context, id blob.ID) (*tree.Tree, error) {
	b, err := rd.cache.Blob(ctx, nil, id)
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
type WalkFunc = tree.WalkFunc

// SkipDir makes Walk skip a directory's entries.
var SkipDir = tree.SkipDir

// Walk visits every entry of the tree id.
func (rd *Reader) Walk(ctx context.Context, id blob.ID, fn WalkFunc) error {
	return tree.Walk(ctx, rd.Tree, id, fn)
}

// Finder finds entries of the tree root by path during a depth-first walk (a backup looking
// up each file's entry in its parent snapshot, for Writer.Reuse).
func (rd *Reader) Finder(root blob.ID) *tree.Finder { return tree.NewFinder(rd.Tree, root) }

// Lookup finds the entry at path p in the tree root (nil when there is none).
func (rd *Reader) Lookup(ctx context.Context, root blob.ID, p string) (*tree.Node, error) {
	return tree.Lookup(ctx, rd.Tree, root, p)
}

// Content returns a reader of a file's content, blob by blob, each verified; it is valid until
// the next call of Content (see blobs.Cache.Content).
func (rd *Reader) Content(ctx context.Context, n *tree.Node) io.Reader {
	return rd.cache.Content(ctx, n)
}
