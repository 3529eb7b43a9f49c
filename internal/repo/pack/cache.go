package pack

import (
	"context"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Cache keeps the last packs fetched (the oldest dropped first) and fetches ahead: a restore
// reads each pack once while its blobs are needed.
type Cache struct {
	fetch func(ctx context.Context, id blob.ID) ([]byte, error)
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

// NewCache keeps max packs, fetched (and verified) by fetch.
func NewCache(max int, fetch func(ctx context.Context, id blob.ID) ([]byte, error)) *Cache {
	return &Cache{fetch: fetch, max: max, packs: map[blob.ID]*cached{}}
}

// Start begins fetching a pack unless it is cached or being fetched.
func (c *Cache) Start(ctx context.Context, id blob.ID) {
	c.start(ctx, id)
}

func (c *Cache) start(ctx context.Context, id blob.ID) *cached {
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
	go func() {
		defer close(p.done)
		p.b, p.err = c.fetch(ctx, id)
	}()
	return p
}

// Get returns a pack's bytes, fetching it if needed.
func (c *Cache) Get(ctx context.Context, id blob.ID) ([]byte, error) {
	p := c.start(ctx, id)
	select {
	case <-p.done:
		return p.b, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
