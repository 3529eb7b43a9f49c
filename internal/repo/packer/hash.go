package packer

import (
	"hash"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Hashers compute blob IDs on several goroutines, so that hashing a stream uses every core
// while its chunks stay in order.
type Hashers struct {
	keys *blob.Keys
	jobs chan *Pending
	wg   sync.WaitGroup
	bufs sync.Pool
	once sync.Once
}

// Pending is a chunk being hashed.
type Pending struct {
	Data []byte // the chunk (a copy, owned until Release)
	id   blob.ID
	done chan struct{}
	buf  *[]byte
}

// NewHashers starts n hashing goroutines; Close them.
func NewHashers(k *blob.Keys, n int) *Hashers {
	h := &Hashers{keys: k, jobs: make(chan *Pending, n)}
	h.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	for range n {
		h.wg.Add(1)
		go h.run(k.Hasher())
	}
	return h
}

func (h *Hashers) run(m hash.Hash) {
	defer h.wg.Done()
	for p := range h.jobs {
		m.Reset()
		m.Write(p.Data)
		m.Sum(p.id[:0])
		close(p.done)
	}
}

// Hash queues a copy of data.
func (h *Hashers) Hash(data []byte) *Pending {
	buf := h.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], data...)
	p := &Pending{Data: *buf, buf: buf, done: make(chan struct{})}
	h.jobs <- p
	return p
}

// Wait returns the chunk's ID.
func (p *Pending) Wait() blob.ID {
	<-p.done
	return p.id
}

// Release gives the chunk's buffer back (after Wait).
func (h *Hashers) Release(p *Pending) {
	*p.buf = p.Data[:0]
	h.bufs.Put(p.buf)
}

// Close stops the goroutines (once; later calls do nothing).
func (h *Hashers) Close() {
	h.once.Do(func() {
		close(h.jobs)
		h.wg.Wait()
	})
}
