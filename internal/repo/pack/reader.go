package pack

import (
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// BlobReader reads the plaintext of blobs one after another, decoding up to ahead blobs at
// once on their own goroutines (decryption, decompression and hashing use every core).
type BlobReader struct {
	ids     []blob.ID
	decode  func(ids []blob.ID) ([]byte, error)
	release func([]byte) // takes back a blob's buffer once read (nil: none)
	ahead   int
	started int
	pending []chan decoded
	buf     []byte
	off     int
	err     error
}

type decoded struct {
	b   []byte
	err error
}

// NewBlobReader reads the blobs ids; decode returns the plaintext of ids[0] (the rest of ids
// are what comes after it, to fetch ahead). Once a blob is read, its buffer goes to release
// (nil: none), for decode to use again.
func NewBlobReader(ids []blob.ID, ahead int, decode func(ids []blob.ID) ([]byte, error), release func([]byte)) *BlobReader {
	return &BlobReader{ids: ids, decode: decode, release: release, ahead: max(1, ahead)}
}

func (c *BlobReader) start() {
	for len(c.pending) < c.ahead && c.started < len(c.ids) {
		ch := make(chan decoded, 1)
		go func(ids []blob.ID) {
			b, err := c.decode(ids)
			ch <- decoded{b, err}
		}(c.ids[c.started:])
		c.pending = append(c.pending, ch)
		c.started++
	}
}

func (c *BlobReader) Read(p []byte) (int, error) {
	for c.off == len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		c.start()
		if len(c.pending) == 0 {
			return 0, io.EOF
		}
		if c.release != nil && c.buf != nil {
			c.release(c.buf)
		}
		d := <-c.pending[0]
		c.pending = c.pending[1:]
		c.buf, c.off, c.err = d.b, 0, d.err
		if c.err != nil {
			c.buf = nil
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}
