package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Reader reads snapshots' trees and content; every blob is checked against its ID after it
// is decrypted and decompressed, and every pack against its hash.
type Reader struct {
	r     *Repo
	idx   *index.Index
	cache *packCache
	// Buffers of decoded blobs, used again: a new one for each blob would be cleared by the
	// runtime first (a fifth of a restore's CPU time went to that).
	single []byte      // the last single-blob file's content
	bufs   chan []byte // the blobs of larger files, once read
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
	return &Reader{r: r, idx: idx, cache: r.newPackCache(idx, 6), bufs: make(chan []byte, 8)}
}

// Index is the index the reader reads by.
func (rd *Reader) Index() *index.Index { return rd.idx }

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
// the next call of Content (a file of one blob is read from a buffer used again). A file of
// one blob (most small files) is decoded here and now: handing it to another goroutine and
// waiting for it costs more than the decoding, on a busy machine many times more.
func (rd *Reader) Content(ctx context.Context, n *tree.Node) io.Reader {
	if len(n.Content) == 1 {
		b, err := rd.cache.blob(ctx, rd.single[:0], n.Content[0])
		if err != nil {
			return &errReader{err}
		}
		rd.single = b
		return bytes.NewReader(b)
	}
	return pack.NewBlobReader(n.Content, 3, func(ids []blob.ID) ([]byte, error) {
		rd.cache.prefetch(ctx, ids, 3)
		var dst []byte
		select {
		case dst = <-rd.bufs:
		default:
		}
		return rd.cache.blob(ctx, dst[:0], ids[0])
	}, func(b []byte) {
		select {
		case rd.bufs <- b:
		default:
		}
	})
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
