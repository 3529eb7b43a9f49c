package artifact

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// Contents is what a backup holds, counted while it was made (the tool sees the stream):
// `docker backup verify` restores the backup into a scratch container and compares what it
// finds there with it. Which fields are set depends on the strategy.
type Contents struct {
	// Tables: rows per table, as the dump names it ("public.items", "shop.orders", "items"):
	// postgres (each COPY block), mysql (each table's INSERTed rows), sqlite (count(*) of the
	// copy).
	Tables map[string]int64 `json:"tables,omitempty"`
	// Collections: documents per collection ("db.collection"): mongo.
	Collections map[string]int64 `json:"collections,omitempty"`
	// Keys: keys per database ("db0"), and of those, Expiring: the keys with a time to live
	// (they may have expired by the time the backup is restored): redis.
	Keys     map[string]int64 `json:"keys,omitempty"`
	Expiring map[string]int64 `json:"expiring,omitempty"`
	// Files, Bytes and Tree describe file trees: the number of entries (directories, files,
	// links), the bytes of regular files, and a digest of paths, types, modes, owners, link
	// targets and file contents that does not depend on the order of the entries (see
	// TreeDigest): volume.
	Files int64  `json:"files,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Tree  string `json:"tree,omitempty"`
	// Integrity is what the database's own integrity check said of the restored data ("ok"
	// when sound): sqlite. Found by verify, never recorded at backup.
	Integrity string `json:"integrity,omitempty"`
	// Truncated is set when there were more tables or collections than MaxCounted: only the
	// first MaxCounted are listed.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxCounted bounds the tables or collections a manifest lists, so that a manifest stays
// well below MaxManifestSize.
const MaxCounted = 20000

// Count adds n to name in m (created when nil), unless m is full; it returns m and whether
// name was counted.
func Count(m map[string]int64, name string, n int64) (map[string]int64, bool) {
	if m == nil {
		m = map[string]int64{}
	}
	if _, ok := m[name]; !ok && len(m) >= MaxCounted {
		return m, false
	}
	m[name] += n
	return m, true
}

// TreeDigest digests a file tree entry by entry, in any order: two trees with the same
// entries give the same digest whatever order they are walked in. Names (with type, mode,
// owner, link target) and contents are summed apart, so that a group of hard links gives the
// same digest whichever of its names carries the content (tar stores the content once, under
// the name it meets first).
type TreeDigest struct {
	names, contents sum256
	Files, Bytes    int64
}

// sum256 is a multiset hash: the sum modulo 2^256 of the SHA-256 of each element.
type sum256 [4]uint64

func (s *sum256) add(element []byte) {
	h := sha256.Sum256(element)
	var carry uint64
	for i := 3; i >= 0; i-- {
		s[i], carry = bits.Add64(s[i], binary.BigEndian.Uint64(h[i*8:]), carry)
	}
}

func (s *sum256) bytes() []byte {
	b := make([]byte, 32)
	for i := range s {
		binary.BigEndian.PutUint64(b[i*8:], s[i])
	}
	return b
}

// Entry kinds for TreeDigest.Add.
const (
	EntryDir     = 'd'
	EntryFile    = 'f' // a regular file, or another name (hard link) of one
	EntrySymlink = 'l'
	EntryOther   = 'o' // device, FIFO
)

// Add records one entry: its kind, its path (relative, without a trailing slash), its
// permission bits (ignored for symbolic links), owner, link target (symbolic links) or
// device numbers (other), all in detail.
func (t *TreeDigest) Add(kind byte, name string, mode int64, uid, gid int, detail string) {
	if kind == EntrySymlink {
		mode = 0
	}
	t.Files++
	t.names.add(fmt.Appendf(nil, "%c\x00%s\x00%o\x00%d\x00%d\x00%s", kind, name, mode&0o7777, uid, gid, detail))
}

// AddContent records the content of one regular file (once per hard-link group), by its size
// and a hash of its bytes.
func (t *TreeDigest) AddContent(size int64, hash uint64) {
	t.Bytes += size
	t.contents.add(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(size)), hash))
}

// Sum is the digest: "sha256:" and the hex SHA-256 of both sums.
func (t *TreeDigest) Sum() string {
	h := sha256.New()
	h.Write([]byte("docker-backup tree v1\x00"))
	h.Write(t.names.bytes())
	h.Write(t.contents.bytes())
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
