// Package packer turns new blobs into stored packs: it compresses and encrypts them on
// several goroutines, packs them (data and trees in separate packs) and stores full packs, a
// bounded number at once.
package packer

import (
	"context"
	"fmt"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// Config tunes a Packer.
type Config struct {
	Keys     *blob.Keys
	PackSize int // a pack is stored once it holds this much
	Workers  int // goroutines compressing and encrypting
	Uploads  int // packs being stored at once
	// Store stores a finished pack (its ID is the SHA-256 of its bytes).
	Store func(ctx context.Context, id blob.ID, pack []byte) error
	// Index, when set, is given the stored packs once they hold IndexEvery blobs (so that
	// a backup of a million files does not keep their index entries): it stores an index file.
	Index      func(ctx context.Context, packs []index.Pack) error
	IndexEvery int
}

// Stats count what was stored.
type Stats struct {
	Blobs, Raw, Stored, Packs int64
}

// Packer compresses and encrypts new blobs on Workers goroutines, packs them and stores full
// packs, at most Uploads at once. Memory is bounded: a chunk queued per worker, one pack
// filling per type, Uploads packs in flight.
type Packer struct {
	cfg     Config
	ctx     context.Context
	cancel  context.CancelCauseFunc
	jobs    chan job
	sealed  chan sealedBlob
	workers sync.WaitGroup
	packerD chan struct{}
	uploads sync.WaitGroup
	slots   chan struct{}
	bufs    sync.Pool
	once    sync.Once

	free chan []byte // a stored pack's buffer, for the next (one: each held is a pack's size of memory)

	mu      sync.Mutex
	packs   []index.Pack // stored, not yet given to Index
	pending int          // blobs in packs
	stats   Stats
}

type job struct {
	id   blob.ID
	typ  blob.Type
	data *[]byte
}

type sealedBlob struct {
	id     blob.ID
	typ    blob.Type
	comp   uint8
	stored *[]byte
	raw    int
}

// New starts a packer; Finish or Abort it.
func New(ctx context.Context, cfg Config) *Packer {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &Packer{cfg: cfg, ctx: ctx, cancel: cancel,
		jobs: make(chan job, cfg.Workers), sealed: make(chan sealedBlob, cfg.Workers),
		packerD: make(chan struct{}), slots: make(chan struct{}, cfg.Uploads), free: make(chan []byte, 1)}
	p.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	for range cfg.Workers {
		p.workers.Add(1)
		go p.work()
	}
	go p.pack()
	return p
}

// Err is why the packer stopped, if it did.
func (p *Packer) Err() error { return context.Cause(p.ctx) }

// Add queues a new blob (copying data).
func (p *Packer) Add(id blob.ID, typ blob.Type, data []byte) error {
	buf := p.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], data...)
	select {
	case p.jobs <- job{id: id, typ: typ, data: buf}:
		return nil
	case <-p.ctx.Done():
		return p.Err()
	}
}

func (p *Packer) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		out := p.bufs.Get().(*[]byte)
		stored, comp, err := p.cfg.Keys.Encode((*out)[:0], *j.data)
		raw := len(*j.data)
		p.bufs.Put(j.data)
		if err != nil {
			p.cancel(fmt.Errorf("encrypting blob %s: %w", j.id, err))
			continue
		}
		*out = stored
		select {
		case p.sealed <- sealedBlob{id: j.id, typ: j.typ, comp: comp, stored: out, raw: raw}:
		case <-p.ctx.Done():
		}
	}
}

func (p *Packer) pack() {
	defer close(p.packerD)
	builders := map[blob.Type]*pack.Builder{}
	limit := p.cfg.PackSize + p.cfg.PackSize/8 // a data pack's buffer: it never grows
	for s := range p.sealed {
		b := builders[s.typ]
		if b != nil && b.Size() > 0 && b.Size()+len(*s.stored) > limit {
			// Stored now rather than grown (a reallocation would double its buffer).
			p.upload(b)
			b = nil
		}
		if b == nil {
			b = p.builder(s.typ)
			builders[s.typ] = b
		}
		b.Add(s.id, s.typ, s.comp, *s.stored, s.raw)
		p.bufs.Put(s.stored)
		if b.Size() >= p.cfg.PackSize {
			p.upload(b)
			delete(builders, s.typ)
		}
	}
	for _, t := range []blob.Type{blob.Data, blob.Tree} {
		if b := builders[t]; b != nil {
			p.upload(b)
		}
	}
}

// builder starts a pack of blobs of type t: a data pack in the buffer of one already stored
// when there is one; a tree pack small, to grow as needed (a snapshot's trees are a small
// part of it).
func (p *Packer) builder(t blob.Type) *pack.Builder {
	if t != blob.Data {
		return pack.NewBuilder(64 << 10)
	}
	select {
	case buf := <-p.free:
		return pack.Reuse(buf)
	default:
		return pack.NewBuilder(p.cfg.PackSize)
	}
}

// upload stores a full pack, waiting for a free slot.
func (p *Packer) upload(b *pack.Builder) {
	select {
	case p.slots <- struct{}{}:
	case <-p.ctx.Done():
		return
	}
	p.uploads.Add(1)
	go func() {
		defer func() { <-p.slots; p.uploads.Done() }()
		data, id, entries, err := b.Finish(p.cfg.Keys)
		if err == nil {
			err = p.cfg.Store(p.ctx, id, data)
		}
		if err != nil {
			p.cancel(err)
			return
		}
		if cap(data) >= p.cfg.PackSize { // a data pack's buffer, for the next one
			select {
			case p.free <- data:
			default:
			}
		}
		if err := p.stored(index.Pack{ID: id, Size: int64(len(data)), Blobs: entries}); err != nil {
			p.cancel(err)
		}
	}()
}

// stored records a stored pack, and hands the packs to Index when they are enough.
func (p *Packer) stored(pk index.Pack) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.packs = append(p.packs, pk)
	p.pending += len(pk.Blobs)
	p.stats.Packs++
	for _, e := range pk.Blobs {
		p.stats.Blobs++
		p.stats.Raw += int64(e.Raw)
		p.stats.Stored += int64(e.Length)
	}
	if p.cfg.Index == nil || p.pending < p.cfg.IndexEvery {
		return nil
	}
	packs := p.packs
	p.packs, p.pending = nil, 0
	return p.cfg.Index(p.ctx, packs)
}

// Finish flushes every blob and waits for the uploads; it returns the stored packs not yet
// given to Index.
func (p *Packer) Finish() ([]index.Pack, Stats, error) {
	p.once.Do(func() {
		close(p.jobs)
		p.workers.Wait()
		close(p.sealed)
		<-p.packerD
		p.uploads.Wait()
	})
	if err := p.Err(); err != nil {
		return nil, Stats{}, err
	}
	p.cancel(nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packs, p.stats, nil
}

// Abort stops the packer and waits for its goroutines.
func (p *Packer) Abort(cause error) {
	p.cancel(cause)
	p.Finish()
}
