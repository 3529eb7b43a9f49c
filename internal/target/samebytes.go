package target

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
)

// SameBytes makes a pin's later reads prove they read the bytes of its first: the digest of
// the first read that reaches the end is kept, and a later read that reaches the end with
// another digest fails there with ErrChanged instead of io.EOF. It is for servers whose file
// identity a writer can keep while changing the bytes (an in-place rewrite with its times set
// back): the restore verifies on its first read and applies on its second, and so fails
// rather than finish with bytes it did not verify. A read that stops early proves nothing.
type SameBytes struct {
	mu  sync.Mutex
	sum []byte // nil until a read reached the end
}

// Reader returns rc, checked at its end; where names the object for the error.
func (s *SameBytes) Reader(rc io.ReadCloser, where string) io.ReadCloser {
	return &sameBytesReader{ReadCloser: rc, s: s, h: sha256.New(), where: where}
}

type sameBytesReader struct {
	io.ReadCloser
	s     *SameBytes
	h     hash.Hash
	where string
	done  bool
}

func (r *sameBytesReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.h.Write(p[:n])
	if err == io.EOF && !r.done {
		r.done = true
		if !r.s.check(r.h.Sum(nil)) {
			return n, fmt.Errorf("%s: %w (its bytes differ from those read before, with the same size and times: rewritten in place)", r.where, ErrChanged)
		}
	}
	return n, err
}

// check keeps sum if it is the first, else says whether it is the same.
func (s *SameBytes) check(sum []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sum == nil {
		s.sum = sum
		return true
	}
	return bytes.Equal(s.sum, sum)
}
