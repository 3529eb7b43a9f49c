package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
	"github.com/docker-backup/docker-backup/internal/target"
)

// nullTarget keeps only the config and counts what was put: the pipeline's throughput
// without a disk.
type nullTarget struct {
	config []byte
	stored atomic.Int64
}

func (n *nullTarget) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if key == configKey {
		b, err := io.ReadAll(r)
		n.config = b
		return int64(len(b)), err
	}
	c, err := io.Copy(io.Discard, r)
	n.stored.Add(c)
	return c, err
}

func (n *nullTarget) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == configKey && n.config != nil {
		return io.NopCloser(bytes.NewReader(n.config)), nil
	}
	return nil, target.ErrNotExist
}

func (n *nullTarget) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(func(target.Object, error) bool) {}
}
func (n *nullTarget) Delete(ctx context.Context, key string) error { return nil }
func (n *nullTarget) String() string                               { return "null" }

// mixedReader yields size bytes: 1 MiB blocks, alternately random (incompressible, as media
// are) and words of a vocabulary of 4096 (compressible about 3:1, as documents, logs and dumps
// are). Its generator is cheap (splitmix64), so that it costs little beside what is measured.
type mixedReader struct {
	state uint64
	left  int64
	buf   []byte
	off   int
	n     int
	words [][]byte
}

func newMixed(size int64) *mixedReader {
	m := &mixedReader{state: 1, left: size, buf: make([]byte, 1<<20)}
	m.off = len(m.buf)
	for range 4096 {
		w := make([]byte, 2+m.next()%9)
		for i := range w {
			w[i] = 'a' + byte(m.next()%26)
		}
		m.words = append(m.words, append(w, ' '))
	}
	return m
}

func (m *mixedReader) next() uint64 {
	m.state += 0x9e3779b97f4a7c15
	z := m.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (m *mixedReader) fill() {
	m.buf = m.buf[:1<<20]
	if m.n%2 == 0 {
		for i := 0; i < len(m.buf); i += 8 {
			binary.LittleEndian.PutUint64(m.buf[i:], m.next())
		}
	} else {
		m.buf = m.buf[:0]
		for len(m.buf) < 1<<20 {
			v := m.next()
			for j := range 5 {
				m.buf = append(m.buf, m.words[(v>>(12*j))&4095]...)
			}
		}
		m.buf = m.buf[:1<<20]
	}
	m.n++
	m.off = 0
}

func (m *mixedReader) Read(p []byte) (int, error) {
	if m.left <= 0 {
		return 0, io.EOF
	}
	if m.off == len(m.buf) {
		m.fill()
	}
	n := copy(p, m.buf[m.off:])
	n = int(min(int64(n), m.left))
	m.off += n
	m.left -= int64(n)
	return n, nil
}

func benchBackup(b *testing.B, encrypted bool, level blob.Level) {
	const size = 1 << 30
	ctx := context.Background()
	signer, _ := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	var opts InitOptions
	if encrypted {
		opts.Recipients, _ = ageKeys(&testing.T{})
	}
	b.SetBytes(size)
	for range b.N {
		nt := &nullTarget{}
		r, err := Init(ctx, nt, opts, Access{Signer: signer, Trust: artifact.NewKeyring(signer), Compression: level})
		if err != nil {
			b.Fatal(err)
		}
		peak := watchHeap()
		cpu0 := cpuTime()
		start := time.Now()
		w, err := r.NewWriter(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.AddFile("volume.tar", nodeFile(), newMixed(size)); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Commit(ctx, Snapshot{Project: "bench"}); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s/GiB")
		b.ReportMetric(float64(peak()>>20), "peak-heap-MiB")
		b.ReportMetric(float64(nt.stored.Load())/size, "stored/raw")
		b.ReportMetric(elapsed.Seconds(), "s/GiB")
	}
}

// watchHeap samples the heap in use until the returned function is called, which returns
// the peak above what was in use at the start.
func watchHeap() func() uint64 {
	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	return func() uint64 { close(stop); return peak.Load() - base.HeapInuse }
}

// BenchmarkBackup1GiB: chunking, hashing, compression (and encryption) of 1 GiB of mixed data.
func BenchmarkBackup1GiB(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchBackup(b, false, "") })
	b.Run("encrypted", func(b *testing.B) { benchBackup(b, true, "") })
	b.Run("encrypted-level-default", func(b *testing.B) { benchBackup(b, true, "default") })
}

// BenchmarkGenerator is the benchmark data's own cost, included in BenchmarkBackup1GiB.
func BenchmarkGenerator(b *testing.B) {
	b.SetBytes(1 << 30)
	for range b.N {
		io.Copy(io.Discard, newMixed(1<<30))
	}
}

// BenchmarkIndex1M: the memory of an index of a million blobs, and a lookup's time.
func BenchmarkIndex1M(b *testing.B) {
	const blobs = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := index.New()
	rnd := rand.NewChaCha8([32]byte{1})
	ids := make([]blob.ID, 0, 1000)
	for p := range blobs / 100 { // packs of 100 blobs
		entries := make([]pack.Entry, 100)
		for i := range entries {
			rnd.Read(entries[i].ID[:])
			entries[i].Offset, entries[i].Length, entries[i].Raw, entries[i].Type = uint32(i*1000), 1000, 2000, blob.Data
		}
		if p%10 == 0 {
			ids = append(ids, entries[0].ID)
		}
		var pid blob.ID
		rnd.Read(pid[:])
		x.AddPack(pid, 100_000, entries)
	}
	x.Freeze()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ResetTimer()
	for i := range b.N {
		if !x.Has(ids[i%len(ids)]) {
			b.Fatal("lost a blob")
		}
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/1M-blobs")
	runtime.KeepAlive(x)
}

// cpuTime is the process's user and system CPU time (the benchmark's machine is shared: CPU
// seconds are steadier than wall time).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSmallFiles1M: a million files of 1 KiB in 1000 directories (new data): the time
// per file and the peak heap.
func BenchmarkSmallFiles1M(b *testing.B) {
	ctx := context.Background()
	signer, _ := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	for range b.N {
		nt := &nullTarget{}
		r, err := Init(ctx, nt, InitOptions{}, Access{Signer: signer, Trust: artifact.NewKeyring(signer)})
		if err != nil {
			b.Fatal(err)
		}
		peak := watchHeap()
		w, err := r.NewWriter(ctx)
		if err != nil {
			b.Fatal(err)
		}
		gen := newMixed(1 << 40)
		buf := make([]byte, 1024)
		for d := range 1000 {
			for f := range 1000 {
				io.ReadFull(gen, buf)
				if err := w.AddFile(fmt.Sprintf("d%03d/f%03d", d, f), nodeFile(), bytes.NewReader(buf)); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := w.Commit(ctx, Snapshot{Project: "bench"}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak()>>20), "peak-heap-MiB")
	}
}

// BenchmarkRestore1GiB: a snapshot of 1 GiB of mixed data on a local target, exported as a
// tar (every pack hashed, every blob decrypted, decompressed and checked).
func BenchmarkRestore1GiB(b *testing.B) {
	ctx := context.Background()
	signer, _ := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	tg, err := target.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	rs, _ := ageKeys(&testing.T{})
	r, err := Init(ctx, tg, InitOptions{Recipients: rs}, Access{Signer: signer, Trust: artifact.NewKeyring(signer)})
	if err != nil {
		b.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.AddFile("volume.tar", nodeFile(), newMixed(1<<30)); err != nil {
		b.Fatal(err)
	}
	s, err := w.Commit(ctx, Snapshot{Project: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 30)
	b.ResetTimer()
	for range b.N {
		cpu0 := cpuTime()
		rd, err := r.NewReader(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := rd.Export(ctx, s, io.Discard); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s/GiB")
	}
}

// BenchmarkBackup1GiBUnchanged: the second backup of an unchanged 1 GiB stream (a dump that
// did not change): read, chunked and hashed, nothing stored.
func BenchmarkBackup1GiBUnchanged(b *testing.B) {
	ctx := context.Background()
	signer, _ := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	tg, err := target.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	r, err := Init(ctx, tg, InitOptions{}, Access{Signer: signer, Trust: artifact.NewKeyring(signer)})
	if err != nil {
		b.Fatal(err)
	}
	backup := func() *Snapshot {
		w, err := r.NewWriter(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.AddFile("dump.sql", nodeFile(), newMixed(1<<30)); err != nil {
			b.Fatal(err)
		}
		s, err := w.Commit(ctx, Snapshot{Project: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	backup()
	b.SetBytes(1 << 30)
	b.ResetTimer()
	for range b.N {
		cpu0 := cpuTime()
		if s := backup(); s.Totals.NewBlobs != 0 {
			b.Fatalf("an unchanged stream stored %d blobs", s.Totals.NewBlobs)
		}
		b.ReportMetric((cpuTime() - cpu0).Seconds(), "cpu-s/GiB")
	}
}
