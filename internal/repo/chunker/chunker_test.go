package chunker

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/restic/chunker"
)

func params() Params {
	return Params{Algorithm: Algorithm, Seed: bytes.Repeat([]byte{7}, 32), Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax}
}

// testData is n bytes: half random, half a repeated random block (compressible, repetitive).
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i < n/2; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n/2; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	block := b[:64<<10]
	for i := n / 2; i < n; i += len(block) {
		copy(b[i:], block)
	}
	return b
}

func chunks(t *testing.T, tb *Table, data []byte) [][32]byte {
	t.Helper()
	c := tb.New(bytes.NewReader(data))
	var sums [][32]byte
	total := 0
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) > DefaultMax {
			t.Fatalf("chunk of %d bytes is over the maximum", len(ch))
		}
		total += len(ch)
		sums = append(sums, sha256.Sum256(ch))
	}
	if total != len(data) {
		t.Fatalf("chunks hold %d bytes of %d", total, len(data))
	}
	return sums
}

// TestShiftResistance: inserting bytes near the start changes only the first chunks.
func TestShiftResistance(t *testing.T) {
	tb, err := NewTable(params())
	if err != nil {
		t.Fatal(err)
	}
	data := testData(64<<20, 1)
	a := chunks(t, tb, data)
	b := chunks(t, tb, append([]byte("inserted!"), data...))
	if len(a) < 20 {
		t.Fatalf("only %d chunks in 64 MiB: the average is off", len(a))
	}
	set := map[[32]byte]bool{}
	for _, s := range a {
		set[s] = true
	}
	same := 0
	for _, s := range b {
		if set[s] {
			same++
		}
	}
	if same < len(a)-3 {
		t.Fatalf("after a 9-byte insertion only %d of %d chunks are the same", same, len(a))
	}
}

func benchData(b *testing.B) []byte {
	b.Helper()
	return testData(256<<20, 2)
}

// BenchmarkFastCDC: MB/s over 256 MiB of random and repetitive data.
func BenchmarkFastCDC(b *testing.B) {
	data := benchData(b)
	tb, err := NewTable(params())
	if err != nil {
		b.Fatal(err)
	}
	c := tb.New(nil)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		c.Reset(bytes.NewReader(data))
		n := 0
		for {
			if _, err := c.Next(); err != nil {
				break
			}
			n++
		}
		b.ReportMetric(float64(len(data))/float64(n)/(1<<20), "MiB/chunk")
	}
}

// BenchmarkResticChunker: the same with github.com/restic/chunker (Rabin).
func BenchmarkResticChunker(b *testing.B) {
	data := benchData(b)
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		b.Fatal(err)
	}
	c := chunker.New(nil, pol)
	buf := make([]byte, chunker.MaxSize)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		c.Reset(bytes.NewReader(data), pol)
		n := 0
		for {
			if _, err := c.Next(buf); err != nil {
				break
			}
			n++
		}
		b.ReportMetric(float64(len(data))/float64(n)/(1<<20), "MiB/chunk")
	}
}
