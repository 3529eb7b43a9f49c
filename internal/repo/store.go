package repo

import (
	"context"
	"fmt"
	"path"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

func packKey(id blob.ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// maxPack bounds a pack's size when it is read.
const maxPack = 1 << 30

// LoadIndex reads every index file. It returns the index and the index files' keys.
func (r *Repo) LoadIndex(ctx context.Context) (*index.Index, []string, error) {
	x := index.New()
	var keys []string
	for o, err := range r.t.List(ctx, "index/") {
		if err != nil {
			return nil, nil, fmt.Errorf("listing the index of repository %s in %s: %w", r.cfg.ID, r.t, err)
		}
		b, err := r.get(ctx, o.Key, index.MaxFile)
		if err != nil {
			return nil, nil, fmt.Errorf("index file %s: %w", o.Key, err)
		}
		if blob.Sum(b).String() != path.Base(o.Key) {
			return nil, nil, fmt.Errorf("index file %s: its content does not hash to its name (damaged or tampered with)", o.Key)
		}
		f, err := index.Decode(r.keys, b)
		if err != nil {
			return nil, nil, fmt.Errorf("index file %s: %w", o.Key, err)
		}
		x.Add(f)
		keys = append(keys, o.Key)
	}
	x.Freeze()
	return x, keys, nil
}

// indexBlobsPerFile bounds an index file (about 7 MB of JSON).
const indexBlobsPerFile = 50_000

// writeIndex stores packs in one or more index files and returns their keys.
func (r *Repo) writeIndex(ctx context.Context, packs []index.Pack) ([]string, error) {
	var keys []string
	var f index.File
	n := 0
	flush := func() error {
		if len(f.Packs) == 0 {
			return nil
		}
		b, err := index.Encode(r.keys, f)
		if err != nil {
			return err
		}
		key := "index/" + blob.Sum(b).String()
		if err := r.put(ctx, key, b, true); err != nil {
			return err
		}
		keys = append(keys, key)
		f, n = index.File{}, 0
		return nil
	}
	for _, p := range packs {
		f.Packs = append(f.Packs, p)
		if n += len(p.Blobs); n >= indexBlobsPerFile {
			if err := flush(); err != nil {
				return keys, err
			}
		}
	}
	return keys, flush()
}

// fetchPack downloads a pack and checks its bytes against its ID.
func (r *Repo) fetchPack(ctx context.Context, id blob.ID, size int64) ([]byte, error) {
	limit := int64(maxPack)
	if size > 0 {
		limit = size
	}
	b, err := r.get(ctx, packKey(id), limit)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id, err)
	}
	if size > 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("pack %s: %d bytes, the index says %d: %w", id, len(b), size, pack.ErrDamaged)
	}
	if blob.Sum(b) != id {
		return nil, fmt.Errorf("pack %s: its content does not hash to its ID: %w", id, pack.ErrDamaged)
	}
	return b, nil
}

// packCache keeps the packs a reader fetched, the least recently used dropped first, and
// fetches ahead.
type packCache struct {
	r     *Repo
	x     *index.Index
	max   int
	mu    sync.Mutex
	packs map[blob.ID]*cached
	order []blob.ID
}

type cached struct {
	done chan struct{}
	b    []byte
	err  error
}

func newPackCache(r *Repo, x *index.Index, max int) *packCache {
	return &packCache{r: r, x: x, max: max, packs: map[blob.ID]*cached{}}
}

// start begins fetching a pack unless it is cached or being fetched.
func (c *packCache) start(ctx context.Context, id blob.ID) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.packs[id]; ok {
		return p
	}
	p := &cached{done: make(chan struct{})}
	c.packs[id] = p
	c.order = append(c.order, id)
	for len(c.order) > c.max {
		delete(c.packs, c.order[0])
		c.order = c.order[1:]
	}
	size, _ := c.x.PackSize(id)
	go func() {
		defer close(p.done)
		p.b, p.err = c.r.fetchPack(ctx, id, size)
	}()
	return p
}

// blob returns a blob's plaintext, verified (appended to dst).
func (c *packCache) blob(ctx context.Context, dst []byte, id blob.ID) ([]byte, error) {
	loc, ok := c.x.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s is in no pack of the index", id)
	}
	p := c.start(ctx, loc.Pack)
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	stored, err := pack.Stored(p.b, loc.Entry)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", loc.Pack, err)
	}
	out, err := c.r.keys.Decode(dst, stored, loc.Entry.Comp, int(loc.Entry.Raw), id)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", loc.Pack, err)
	}
	return out, nil
}

// prefetch starts fetching the packs of the blobs ahead.
func (c *packCache) prefetch(ctx context.Context, ids []blob.ID, packs int) {
	var seen []blob.ID
	for _, id := range ids {
		if len(seen) >= packs {
			return
		}
		loc, ok := c.x.Lookup(id)
		if !ok {
			continue
		}
		if !containsID(seen, loc.Pack) {
			seen = append(seen, loc.Pack)
			c.start(ctx, loc.Pack)
		}
	}
}

func containsID(s []blob.ID, id blob.ID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}
