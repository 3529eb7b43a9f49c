package artifact

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// ChunkReader reads a stored stream chunk by chunk and passes a chunk on only once it matched
// its sum in a verified chunk list: whatever the source does meanwhile (changed in place,
// replaced, cut short, appended to), not one byte that was not signed comes out of it. It
// ends with io.EOF only when the stream ends right after its last chunk. Errors about the
// stream's content wrap ErrCorrupt; the source's own errors are returned wrapped in
// ReadError. It holds one chunk in memory.
type ChunkReader struct {
	r        io.Reader
	c        *Chunks
	list     []byte
	size     int64 // of the whole stream
	buf      []byte
	off, end int
	next     int64 // the next chunk to read
	n        int64 // bytes read from r
	err      error
}

// NewChunkReader verifies r, size bytes in all, against the chunk list described by c (which
// must have passed c.CheckList).
func NewChunkReader(r io.Reader, size int64, c *Chunks, list []byte) *ChunkReader {
	return &ChunkReader{r: r, c: c, list: list, size: size}
}

// ReadError is a failure to read the stored stream (not a matter of its content).
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Read serves the current verified chunk, reading and verifying the next one first when it
// is used up.
func (v *ChunkReader) Read(p []byte) (int, error) {
	if v.off == v.end {
		if v.err != nil {
			return 0, v.err
		}
		if v.err = v.fill(); v.err != nil {
			return 0, v.err
		}
	}
	n := copy(p, v.buf[v.off:v.end])
	v.off += n
	return n, nil
}

// ReadBytes is how many bytes of the stream were read (verified or not yet).
func (v *ChunkReader) ReadBytes() int64 { return v.n }

// Err is why the stream did not verify, once it failed (nil otherwise, also at io.EOF).
func (v *ChunkReader) Err() error {
	if v.err != nil && !errors.Is(v.err, io.EOF) {
		return v.err
	}
	return nil
}

func (v *ChunkReader) fill() error {
	if v.next == v.c.Count {
		var one [1]byte
		switch n, err := io.ReadFull(v.r, one[:]); {
		case n > 0:
			return fmt.Errorf("it is longer than the %d bytes its manifest says (replaced or appended to): %w", v.size, ErrCorrupt)
		case !errors.Is(err, io.EOF):
			return &ReadError{err}
		}
		return io.EOF
	}
	size := min(v.c.Size, v.size-v.n)
	if size <= 0 {
		return fmt.Errorf("its chunk list has more chunks than its %d bytes hold: %w", v.size, ErrCorrupt)
	}
	if int64(cap(v.buf)) < size {
		v.buf = make([]byte, v.c.Size)
	}
	n, err := io.ReadFull(v.r, v.buf[:size])
	v.n += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("it is %d bytes but its manifest says %d (truncated or replaced): %w", v.n, v.size, ErrCorrupt)
	case err != nil:
		return &ReadError{err}
	}
	sum := sha256.Sum256(v.buf[:size])
	if !bytes.Equal(sum[:], v.list[v.next*sha256.Size:(v.next+1)*sha256.Size]) {
		return fmt.Errorf("chunk %d (bytes %d to %d) does not match its checksum in the signed manifest (damaged or tampered with since it was written): %w",
			v.next+1, v.n-size, v.n, ErrCorrupt)
	}
	v.next++
	v.off, v.end = 0, int(size)
	return nil
}
