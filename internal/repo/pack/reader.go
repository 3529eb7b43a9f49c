package pack

import (
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// BlobReader reads the plaintext of blobs one after another.
type BlobReader struct {
	ids  []blob.ID
	next func(dst []byte, ids []blob.ID) ([]byte, error)
	buf  []byte
	off  int
	err  error
}

// NewBlobReader reads the blobs ids; next appends the plaintext of ids[0] to dst (the rest
// of ids are what comes after it, to fetch ahead).
func NewBlobReader(ids []blob.ID, next func(dst []byte, ids []blob.ID) ([]byte, error)) *BlobReader {
	return &BlobReader{ids: ids, next: next}
}

func (c *BlobReader) Read(p []byte) (int, error) {
	for c.off == len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		if len(c.ids) == 0 {
			return 0, io.EOF
		}
		c.buf, c.err = c.next(c.buf[:0], c.ids)
		c.off = 0
		c.ids = c.ids[1:]
		if c.err != nil {
			c.buf = nil
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}
