// Package blobs reads a repository's blobs through a cache of packs: each pack is fetched
// once while its blobs are needed (and the next ones ahead), and every blob is checked
// against its ID after it is decrypted and decompressed.
package blobs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Fetch reads a pack of the size the index says (0: not indexed).
type Fetch func(ctx context.Context, id blob.ID, size int64) ([]byte, error)

// Cache reads blobs by the index x through a cache of the last packs.
type Cache struct {
	packs *pack.Cache
	keys  *blob.Keys
	x     *index.Index
	// Buffers of decoded blobs, used again: a new one for each blob would be cleared by the
	// runtime first (a fifth of a restore's CPU time went to that).
	single []byte      // the last single-blob file's content
	bufs   chan []byte // the blobs of larger files, once read
}

// New is a cache of up to packs packs.
func New(keys *blob.Keys, x *index.Index, packs int, fetch Fetch) *Cache {
	return &Cache{packs: pack.NewCache(packs, func(ctx context.Context, id blob.ID) ([]byte, error) {
		size, _ := x.PackSize(id)
		return fetch(ctx, id, size)
	}), keys: keys, x: x, bufs: make(chan []byte, 8)}
}

// Blob returns a blob's plaintext, verified (appended to dst). A blob in several packs is
// taken from the first that yields it.
func (c *Cache) Blob(ctx context.Context, dst []byte, id blob.ID) ([]byte, error) {
	loc, ok := c.x.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s is in no pack of the index", id)
	}
	out, first := c.blobAt(ctx, dst, id, loc)
	if first == nil || ctx.Err() != nil {
		return out, first
	}
	for _, other := range c.x.Places(id) {
		if other.Pack == loc.Pack {
			continue
		}
		if out, err := c.blobAt(ctx, dst, id, other); err == nil || ctx.Err() != nil {
			return out, err
		}
	}
	return nil, first
}

func (c *Cache) blobAt(ctx context.Context, dst []byte, id blob.ID, loc index.Loc) ([]byte, error) {
	p, err := c.packs.Get(ctx, loc.Pack)
	if err != nil {
		return nil, err
	}
	stored, err := pack.Stored(p, loc.Entry)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", loc.Pack, err)
	}
	out, err := c.keys.Decode(dst, stored, loc.Entry.Comp, int(loc.Entry.Raw), id)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", loc.Pack, err)
	}
	return out, nil
}

// prefetch starts fetching the packs of the blobs ahead (at most packs of them).
func (c *Cache) prefetch(ctx context.Context, ids []blob.ID, packs int) {
	var seen []blob.ID
	for _, id := range ids {
		if len(seen) >= packs {
			return
		}
		if loc, ok := c.x.Lookup(id); ok && !slices.Contains(seen, loc.Pack) {
			seen = append(seen, loc.Pack)
			c.packs.Start(ctx, loc.Pack)
		}
	}
}

// Content returns a reader of a file's content, blob by blob, each verified; it is valid until
// the next call of Content (a file of one blob is read from a buffer used again). A file of
// one blob (most small files) is decoded here and now: handing it to another goroutine and
// waiting for it costs more than the decoding, on a busy machine many times more.
func (c *Cache) Content(ctx context.Context, n *tree.Node) io.Reader {
	if len(n.Content) == 1 {
		b, err := c.Blob(ctx, c.single[:0], n.Content[0])
		if err != nil {
			return &errReader{err}
		}
		c.single = b
		return bytes.NewReader(b)
	}
	return pack.NewBlobReader(n.Content, 3, func(ids []blob.ID) ([]byte, error) {
		c.prefetch(ctx, ids, 3)
		var dst []byte
		select {
		case dst = <-c.bufs:
		default:
		}
		return c.Blob(ctx, dst[:0], ids[0])
	}, func(b []byte) {
		select {
		case c.bufs <- b:
		default:
		}
	})
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
