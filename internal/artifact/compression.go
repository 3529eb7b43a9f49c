package artifact

import (
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names how an artifact's data is compressed.
type Compression string

// The supported compressions.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	// Uncompressed is a stream handed to a worker as it is (a snapshot's, made here from
	// verified blobs); never an artifact's (ParseCompression refuses it).
	Uncompressed Compression = "none"
)

// ParseCompression validates a compression name given by a user or a manifest.
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case Zstd, Gzip:
		return Compression(s), nil
	}
	return "", fmt.Errorf("unknown compression %q: use zstd or gzip", s)
}

// Extension returns the file name extension for the compression.
func (c Compression) Extension() string {
	if c == Gzip {
		return "gz"
	}
	return "zst"
}

// NewWriter compresses into w. Close the returned writer to flush; it does not close w.
func (c Compression) NewWriter(w io.Writer) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		// Level 3 (zstd's default) on every core, like `zstd -T0 -3`.
		return newParallelZstd(w, runtime.GOMAXPROCS(0))
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// NewReader decompresses r.
func (c Compression) NewReader(r io.Reader) (io.ReadCloser, error) {
	switch c {
	case Uncompressed:
		return io.NopCloser(r), nil
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}
