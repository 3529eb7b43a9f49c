package repo

import (
	"context"
	"fmt"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// pipeline compresses and encrypts new blobs on Workers goroutines, packs them (data and
// trees in separate packs) and uploads full packs, at most Uploads at once. Memory is
// bounded: a few chunks queued per worker, one pack filling per type, Uploads packs in flight.
type pipeline struct {
	r       *Repo
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

	mu     sync.Mutex
	packs  []index.Pack // uploaded
	totals Totals
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

func newPipeline(ctx context.Context, r *Repo) *pipeline {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &pipeline{r: r, ctx: ctx, cancel: cancel,
		jobs: make(chan job, r.a.Workers), sealed: make(chan sealedBlob, r.a.Workers),
		packerD: make(chan struct{}), slots: make(chan struct{}, r.a.Uploads)}
	p.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	for range r.a.Workers {
		p.workers.Add(1)
		go p.work()
	}
	go p.pack()
	return p
}

// err is why the pipeline stopped, if it did.
func (p *pipeline) err() error { return context.Cause(p.ctx) }

// add queues a new blob (copying data).
func (p *pipeline) add(id blob.ID, typ blob.Type, data []byte) error {
	buf := p.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], data...)
	select {
	case p.jobs <- job{id: id, typ: typ, data: buf}:
		return nil
	case <-p.ctx.Done():
		return p.err()
	}
}

func (p *pipeline) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		out := p.bufs.Get().(*[]byte)
		stored, comp, err := p.r.keys.Encode((*out)[:0], *j.data)
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

func (p *pipeline) pack() {
	defer close(p.packerD)
	builders := map[blob.Type]*pack.Builder{}
	for s := range p.sealed {
		b := builders[s.typ]
		if b == nil {
			b = pack.NewBuilder(p.r.a.PackSize)
			builders[s.typ] = b
		}
		b.Add(s.id, s.typ, s.comp, *s.stored, s.raw)
		p.bufs.Put(s.stored)
		if b.Size() >= p.r.a.PackSize {
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

// upload stores a full pack, waiting for a free slot.
func (p *pipeline) upload(b *pack.Builder) {
	select {
	case p.slots <- struct{}{}:
	case <-p.ctx.Done():
		return
	}
	p.uploads.Add(1)
	go func() {
		defer func() { <-p.slots; p.uploads.Done() }()
		data, id, entries, err := b.Finish(p.r.keys)
		if err == nil {
			err = p.r.put(p.ctx, packKey(id), data, true)
		}
		if err == nil {
			err = p.r.hook(p.ctx, "backup.pack-uploaded")
		}
		if err != nil {
			p.cancel(fmt.Errorf("uploading pack: %w", err))
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.packs = append(p.packs, index.Pack{ID: id, Size: int64(len(data)), Blobs: entries})
		p.totals.Packs++
		for _, e := range entries {
			p.totals.NewBlobs++
			p.totals.NewRaw += int64(e.Raw)
			p.totals.NewStored += int64(e.Length)
		}
	}()
}

// finish flushes every blob and waits for the uploads; it returns the uploaded packs.
func (p *pipeline) finish() ([]index.Pack, Totals, error) {
	p.once.Do(func() {
		close(p.jobs)
		p.workers.Wait()
		close(p.sealed)
		<-p.packerD
		p.uploads.Wait()
	})
	if err := p.err(); err != nil {
		return nil, Totals{}, err
	}
	p.cancel(nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packs, p.totals, nil
}

// abort stops the pipeline and waits for its goroutines.
func (p *pipeline) abort(cause error) {
	p.cancel(cause)
	p.finish()
}
