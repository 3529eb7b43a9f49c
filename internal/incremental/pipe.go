package incremental

import (
	"io"
	"sync"
)

// Pipe is an in-memory pipe whose writer runs up to blocks×size bytes ahead of its reader (an
// io.Pipe hands each write over and waits): the walk reading files and the writer chunking
// them then work at once, each on its own core.
func Pipe(blocks, size int) (*PipeReader, *PipeWriter) {
	p := &pipe{filled: make(chan []byte, blocks), free: make(chan []byte, blocks+1), done: make(chan struct{})}
	for range blocks + 1 {
		p.free <- make([]byte, 0, size)
	}
	return &PipeReader{p: p}, &PipeWriter{p: p}
}

type pipe struct {
	filled, free chan []byte
	done         chan struct{} // closed when the reader stops
	once         sync.Once
	mu           sync.Mutex
	rerr, werr   error
}

// PipeWriter is the writing half of a Pipe.
type PipeWriter struct {
	p   *pipe
	cur []byte
}

// Write copies b into the pipe's blocks, waiting for a free one when all are full.
func (w *PipeWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if w.cur == nil {
			select {
			case w.cur = <-w.p.free:
			case <-w.p.done:
				return n, w.p.readErr()
			}
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], b)
		w.cur, b, n = w.cur[:len(w.cur)+k], b[k:], n+k
		if len(w.cur) == cap(w.cur) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *PipeWriter) flush() error {
	if len(w.cur) == 0 {
		return nil
	}
	select {
	case w.p.filled <- w.cur:
		w.cur = nil
		return nil
	case <-w.p.done:
		return w.p.readErr()
	}
}

// CloseWithError ends the stream: the reader gets err (io.EOF when nil) after what was written.
func (w *PipeWriter) CloseWithError(err error) error {
	if err == nil {
		err = io.EOF
	}
	ferr := w.flush()
	w.p.mu.Lock()
	w.p.werr = err
	w.p.mu.Unlock()
	close(w.p.filled)
	return ferr
}

// Close is CloseWithError(nil).
func (w *PipeWriter) Close() error { return w.CloseWithError(nil) }

func (p *pipe) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		return io.ErrClosedPipe
	}
	return p.rerr
}

// PipeReader is the reading half of a Pipe.
type PipeReader struct {
	p   *pipe
	cur []byte // the block being read
	off int
}

// Read reads what the writer wrote, then its error (io.EOF after Close).
func (r *PipeReader) Read(b []byte) (int, error) {
	if r.cur == nil {
		cur, ok := <-r.p.filled
		if !ok {
			r.p.mu.Lock()
			defer r.p.mu.Unlock()
			return 0, r.p.werr
		}
		r.cur, r.off = cur, 0
	}
	n := copy(b, r.cur[r.off:])
	r.off += n
	if r.off == len(r.cur) {
		r.p.free <- r.cur[:0]
		r.cur = nil
	}
	return n, nil
}

// CloseWithError stops the reader: the writer's next write fails with err (io.ErrClosedPipe
// when nil).
func (r *PipeReader) CloseWithError(err error) error {
	r.p.once.Do(func() {
		r.p.mu.Lock()
		r.p.rerr = err
		r.p.mu.Unlock()
		close(r.p.done)
	})
	return nil
}
