// Package chunker cuts streams into content-defined chunks with FastCDC (a gear rolling hash
// with normalized chunking), its gear table derived from a per-repository seed so that chunk
// boundaries do not reveal content to someone who does not hold the seed.
package chunker

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Params are a repository's chunking parameters.
type Params struct {
	Algorithm string `json:"algorithm"` // "fastcdc"
	Seed      []byte `json:"seed"`      // 32 random bytes: the gear table's source
	Min       int    `json:"min"`
	Avg       int    `json:"avg"` // a power of two
	Max       int    `json:"max"`
}

// Algorithm is the one chunking algorithm.
const Algorithm = "fastcdc"

// Defaults: chunks of 512 KiB to 8 MiB, 1 MiB on average.
const (
	DefaultMin = 512 << 10
	DefaultAvg = 1 << 20
	DefaultMax = 8 << 20
)

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.Algorithm != Algorithm {
		return fmt.Errorf("chunker %q is not %q", p.Algorithm, Algorithm)
	}
	if len(p.Seed) < 16 {
		return fmt.Errorf("chunker seed of %d bytes is shorter than 16", len(p.Seed))
	}
	if p.Min < 64 || p.Avg <= p.Min || p.Max <= p.Avg || p.Max > 64<<20 || bits.OnesCount(uint(p.Avg)) != 1 {
		return fmt.Errorf("chunk sizes min %d, avg %d, max %d: want 64 ≤ min < avg < max ≤ 64 MiB, avg a power of two", p.Min, p.Avg, p.Max)
	}
	return nil
}

// Table is a gear table with the masks for one set of parameters.
type Table struct {
	gear         [256]uint64
	maskS, maskL uint64
	p            Params
}

// NewTable derives the gear table from the parameters.
func NewTable(p Params) (*Table, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	t := &Table{p: p}
	for i := range t.gear {
		s := sha256.Sum256(append([]byte(fmt.Sprintf("docker-backup gear %d\x00", i)), p.Seed...))
		t.gear[i] = binary.LittleEndian.Uint64(s[:8])
	}
	b := bits.TrailingZeros(uint(p.Avg))
	t.maskS = topBits(b + 2) // harder to cut before the average size
	t.maskL = topBits(b - 2) // easier after it
	return t, nil
}

func topBits(n int) uint64 { return ^uint64(0) << (64 - n) }

// Cut returns the length of the first chunk of data, which holds everything there is
// (at most Max bytes) or, when final is false, at least Max bytes.
func (t *Table) Cut(data []byte) int {
	n := len(data)
	if n <= t.p.Min {
		return n
	}
	n = min(n, t.p.Max)
	normal := min(t.p.Avg, n)
	var h uint64
	i := t.p.Min
	for ; i < normal; i++ {
		h = h<<1 + t.gear[data[i]]
		if h&t.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + t.gear[data[i]]
		if h&t.maskL == 0 {
			return i + 1
		}
	}
	return n
}

// Chunker cuts one stream.
type Chunker struct {
	t          *Table
	r          io.Reader
	buf        []byte
	start, end int
	eof        bool
}

// New returns a chunker reading r, with a buffer of twice the maximum chunk size.
func (t *Table) New(r io.Reader) *Chunker {
	return &Chunker{t: t, r: r, buf: make([]byte, 2*t.p.Max)}
}

// Reset reuses the chunker (and its buffer) for another stream.
func (c *Chunker) Reset(r io.Reader) {
	c.r, c.start, c.end, c.eof = r, 0, 0, false
}

// Next returns the next chunk, valid until the next call; io.EOF after the last.
func (c *Chunker) Next() ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	n := c.t.Cut(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n]
	c.start += n
	return chunk, nil
}

// fill makes the buffer hold at least Max bytes, or all the stream has left.
func (c *Chunker) fill() error {
	if c.eof || c.end-c.start >= c.t.p.Max {
		return nil
	}
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	for c.end < len(c.buf) {
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if errors.Is(err, io.EOF) {
			c.eof = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
