package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A staged restore's stream comes in frames — a 4-byte big-endian length, then that many
// bytes — and ends with an empty frame, after which the sender says the verdict (one byte).
// The worker can so tell a stream that ended as sent from one cut short, on a connection that
// stays open for the verdict.

// maxFrame bounds a frame's length.
const maxFrame = 4 << 20

// frameWriter writes each Write as one frame.
type FrameWriter struct{ w io.Writer }

// newFrameWriter returns a writer of w's frames; end writes the empty frame that ends them.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

func (f *FrameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		if _, err := f.w.Write(hdr[:]); err != nil {
			return written, err
		}
		if _, err := f.w.Write(p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// end writes the empty frame that ends the stream.
func (f *FrameWriter) End() error {
	_, err := f.w.Write([]byte{0, 0, 0, 0})
	return err
}

// frameReader reads the frames' bytes; io.EOF at the empty frame, io.ErrUnexpectedEOF when the
// stream ends before it. It never reads past the empty frame.
type frameReader struct {
	r     io.Reader
	left  int
	ended bool
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.ended {
		return 0, io.EOF
	}
	for f.left == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("the stream was cut short: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			f.ended = true
			return 0, io.EOF
		}
		if n > maxFrame {
			return 0, fmt.Errorf("a frame of %d bytes (at most %d)", n, maxFrame)
		}
		f.left = int(n)
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	if errors.Is(err, io.EOF) {
		if f.left > 0 {
			return n, fmt.Errorf("the stream was cut short: %w", io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}
