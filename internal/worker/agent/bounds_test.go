//go:build linux

package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// TestBoundedFileReadsOnlySignedChunks: given the verified chunk list, the worker reading the
// artifact's file itself gets the chunks before a changed one and not a byte of it; without a
// list, it reads no further than the signed size.
func TestBoundedFileReadsOnlySignedChunks(t *testing.T) {
	data := make([]byte, 2*artifact.ChunkSize+1000)
	rand.Read(data)
	d := artifact.NewDigest()
	d.Write(data)
	list, c := d.List()
	file := filepath.Join(t.TempDir(), "artifact")
	changed := bytes.Clone(data)
	changed[artifact.ChunkSize+10] ^= 1
	os.WriteFile(file, changed, 0o600)
	f, _ := os.Open(file)
	defer f.Close()

	r, err := boundedFile(Request{Stored: int64(len(data)), ChunkSize: c.Size, Chunks: list}, f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, artifact.ErrCorrupt) || !strings.Contains(err.Error(), "chunk 2") {
		t.Errorf("a changed second chunk: %v", err)
	}
	if len(got) != artifact.ChunkSize || !bytes.Equal(got, data[:artifact.ChunkSize]) {
		t.Errorf("read %d bytes before the changed chunk, want exactly the first chunk", len(got))
	}

	// Format 1 (no list): the signed size bounds the read; a longer file is refused.
	os.WriteFile(file, append(bytes.Clone(data), 'x'), 0o600)
	f2, _ := os.Open(file)
	defer f2.Close()
	r, _ = boundedFile(Request{Stored: int64(len(data))}, f2)
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("a file longer than its manifest says: %v", err)
	}
	if _, err := boundedFile(Request{}, f2); err == nil {
		t.Error("a request without the file's size was accepted")
	}
	if _, err := boundedFile(Request{Stored: int64(len(data)), ChunkSize: c.Size, Chunks: list[:32]}, f2); err == nil {
		t.Error("a chunk list that does not describe the file was accepted")
	}
}

// TestRawLimit: a restore unpacks no more than the raw size its signed manifest says.
func TestRawLimit(t *testing.T) {
	var n atomic.Int64
	r := &countingReader{r: bytes.NewReader(make([]byte, 1000)), n: &n, limit: 999}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, artifact.ErrCorrupt) {
		t.Errorf("1000 bytes under a limit of 999: %v", err)
	}
	n.Store(0)
	r = &countingReader{r: bytes.NewReader(make([]byte, 1000)), n: &n, limit: 1000}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Errorf("1000 bytes under a limit of 1000: %v", err)
	}
}
