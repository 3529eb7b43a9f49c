package artifact

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
)

// Chunks describes the chunk list of an artifact: the stored bytes cut into pieces of Size
// bytes (the last one shorter), each piece's SHA-256 in a list object stored beside the
// artifact (ChunksKey), whose own SHA-256 the signed manifest holds. A restore reads the
// list first, then each chunk of the artifact, and passes a chunk on only once it matched:
// bytes changed on the target after the manifest was signed never reach a strategy.
type Chunks struct {
	Size   int64  `json:"size"`
	Count  int64  `json:"count"`
	SHA256 string `json:"sha256"` // of the list object: Count SHA-256 sums of 32 bytes each
}

// ChunkSize is the size of the chunks this build cuts: a restore holds one chunk (and the
// next, read ahead) in memory; the list costs 32 bytes per chunk (256 KiB for 32 GiB).
const ChunkSize = 4 << 20

// Bounds of the chunk size a manifest may name: a forged manifest cannot make a restore
// hold more than maxChunkSize in memory.
const (
	minChunkSize = 64 << 10
	maxChunkSize = 16 << 20
)

// ChunksSuffix ends the key of an artifact's chunk list: the artifact's key and this.
const ChunksSuffix = ".chunks"

// ChunksKey returns the key of the chunk list of the artifact at key.
func ChunksKey(artifactKey string) string { return artifactKey + ChunksSuffix }

// ListSize is the size of the list object.
func (c *Chunks) ListSize() int64 { return c.Count * sha256.Size }

func (c *Chunks) validate(size int64) error {
	switch {
	case c.Size < minChunkSize || c.Size > maxChunkSize:
		return fmt.Errorf("manifest chunk size %d is outside %d to %d bytes", c.Size, minChunkSize, maxChunkSize)
	case c.Count != (size+c.Size-1)/c.Size:
		return fmt.Errorf("manifest has %d chunks of %d bytes for an artifact of %d bytes (want %d)", c.Count, c.Size, size, (size+c.Size-1)/c.Size)
	case !sha256Hex.MatchString(c.SHA256):
		return fmt.Errorf("manifest chunk list sha256 %q is not 64 lowercase hex digits", c.SHA256)
	}
	return nil
}

// Digest hashes a stored stream as it is written: the SHA-256 of all of it and of each
// chunk of ChunkSize bytes.
type Digest struct {
	whole, chunk hash.Hash
	n, inChunk   int64
	list         bytes.Buffer
}

// NewDigest starts a digest.
func NewDigest() *Digest { return &Digest{whole: sha256.New(), chunk: sha256.New()} }

// Write hashes p; it never fails.
func (d *Digest) Write(p []byte) (int, error) {
	n := len(p)
	d.whole.Write(p)
	d.n += int64(n)
	for len(p) > 0 {
		take := min(int64(len(p)), ChunkSize-d.inChunk)
		d.chunk.Write(p[:take])
		d.inChunk += take
		p = p[take:]
		if d.inChunk == ChunkSize {
			d.endChunk()
		}
	}
	return n, nil
}

func (d *Digest) endChunk() {
	d.list.Write(d.chunk.Sum(nil))
	d.chunk.Reset()
	d.inChunk = 0
}

// Size is the number of bytes hashed.
func (d *Digest) Size() int64 { return d.n }

// Sum is the SHA-256 of everything written.
func (d *Digest) Sum() []byte { return d.whole.Sum(nil) }

// List ends the digest and returns the chunk list (the object stored beside the artifact)
// and its description for the manifest. Nothing may be written after.
func (d *Digest) List() ([]byte, *Chunks) {
	if d.inChunk > 0 {
		d.endChunk()
	}
	list := d.list.Bytes()
	return list, DescribeList(list)
}

// DescribeList describes a chunk list of ChunkSize chunks for the manifest.
func DescribeList(list []byte) *Chunks {
	sum := sha256.Sum256(list)
	return &Chunks{Size: ChunkSize, Count: int64(len(list) / sha256.Size), SHA256: HexSum(sum[:])}
}

// CheckList verifies a chunk list read from a target against the manifest: its size and
// SHA-256.
func (c *Chunks) CheckList(list []byte) error {
	if int64(len(list)) != c.ListSize() {
		return fmt.Errorf("the chunk list is %d bytes, its manifest says %d (truncated or replaced)", len(list), c.ListSize())
	}
	if sum := sha256.Sum256(list); HexSum(sum[:]) != c.SHA256 {
		return fmt.Errorf("the chunk list has sha256 %s, its manifest says %s (damaged or tampered with)", HexSum(sum[:]), c.SHA256)
	}
	return nil
}
