// Package index maps blob IDs to their place in packs: the in-memory index (compact: one
// sorted slice of 52-byte entries, plus a map of what was added since it was last sorted) and
// the index files a repository keeps under index/.
package index

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// Loc is where a blob is.
type Loc struct {
	Pack   blob.ID
	Entry  pack.Entry
	packNo uint32
}

type item struct {
	id     blob.ID
	packNo uint32
	offset uint32
	length uint32
	raw    uint32
	typ    blob.Type
	comp   uint8
}

// Index is an in-memory index. Safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	packs  []blob.ID
	sizes  []int64
	packNo map[blob.ID]uint32
	sorted []item
	added  []item
	addSet map[blob.ID]int32 // ID → position in added
	// listings are digests of each pack's listing (a pack listed twice must be listed alike)
	listings map[blob.ID][32]byte
}

// New returns an empty index.
func New() *Index {
	return &Index{packNo: map[blob.ID]uint32{}, addSet: map[blob.ID]int32{}}
}

// AddPack records a pack of size bytes and its blobs.
func (x *Index) AddPack(id blob.ID, size int64, entries []pack.Entry) {
	_ = x.addPack(id, size, entries)
}

// listing is a digest of a pack's size and entries (in offset order).
func listing(size int64, entries []pack.Entry) [32]byte {
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b pack.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(es)*46), uint64(size))
	for _, e := range es {
		b = append(b, byte(e.Type), e.Comp)
		b = binary.LittleEndian.AppendUint32(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.Raw)
		b = append(b, e.ID[:]...)
	}
	return sha256.Sum256(b)
}

// conflict fails when the pack is indexed with another size or other blobs.
func (x *Index) conflict(id blob.ID, size int64, entries []pack.Entry) error {
	x.mu.RLock()
	d, ok := x.listings[id]
	x.mu.RUnlock()
	if ok && d != listing(size, entries) {
		return fmt.Errorf("pack %s is listed twice with different blobs: an index file is forged or damaged", id)
	}
	return nil
}

// addPack records a pack; a pack listed again must be listed with the same size and blobs.
func (x *Index) addPack(id blob.ID, size int64, entries []pack.Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := listing(size, entries)
	if x.listings == nil {
		x.listings = map[blob.ID][32]byte{}
	}
	if _, ok := x.packNo[id]; ok {
		// Listed by another index file too (a prune was interrupted): the same blobs. Other
		// blobs are a forged listing, which would hide the real one (the first is kept).
		if x.listings[id] != d {
			return fmt.Errorf("pack %s is listed twice with different blobs: an index file is forged or damaged", id)
		}
		return nil
	}
	x.listings[id] = d
	no := uint32(len(x.packs))
	x.packs = append(x.packs, id)
	x.sizes = append(x.sizes, size)
	x.packNo[id] = no
	for _, e := range entries {
		it := item{id: e.ID, packNo: no, offset: e.Offset, length: e.Length, raw: e.Raw, typ: e.Type, comp: e.Comp}
		if _, dup := x.addSet[e.ID]; !dup {
			x.addSet[e.ID] = int32(len(x.added))
		}
		x.added = append(x.added, it)
	}
	return nil
}

// Freeze sorts what was added into the compact slice (after loading index files).
func (x *Index) Freeze() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sorted = append(x.sorted, x.added...)
	slices.SortFunc(x.sorted, func(a, b item) int { return bytes.Compare(a.id[:], b.id[:]) })
	x.sorted = slices.Clip(x.sorted)
	x.added = nil
	x.addSet = map[blob.ID]int32{}
}

func (x *Index) loc(it item) Loc {
	return Loc{Pack: x.packs[it.packNo], packNo: it.packNo, Entry: pack.Entry{ID: it.id, Type: it.typ, Comp: it.comp, Offset: it.offset, Length: it.length, Raw: it.raw}}
}

// Lookup finds a blob (one of its places, when it is in several packs).
func (x *Index) Lookup(id blob.ID) (Loc, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i, ok := x.addSet[id]; ok {
		return x.loc(x.added[i]), true
	}
	i, ok := slices.BinarySearchFunc(x.sorted, id, func(a item, id blob.ID) int { return bytes.Compare(a.id[:], id[:]) })
	if !ok {
		return Loc{}, false
	}
	return x.loc(x.sorted[i]), true
}

// Places finds every place of a blob (several when packs listing it overlap: an interrupted
// prune, an index file put back).
func (x *Index) Places(id blob.ID) []Loc {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Loc
	if i, ok := x.addSet[id]; ok {
		out = append(out, x.loc(x.added[i]))
	}
	i, _ := slices.BinarySearchFunc(x.sorted, id, func(a item, id blob.ID) int { return bytes.Compare(a.id[:], id[:]) })
	for ; i < len(x.sorted) && x.sorted[i].id == id; i++ {
		out = append(out, x.loc(x.sorted[i]))
	}
	return out
}

// Has reports whether the blob is indexed.
func (x *Index) Has(id blob.ID) bool {
	_, ok := x.Lookup(id)
	return ok
}

// Len is the number of blob places indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.sorted) + len(x.added)
}

// PackSize returns the size recorded for a pack.
func (x *Index) PackSize(id blob.ID) (int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	no, ok := x.packNo[id]
	if !ok {
		return 0, false
	}
	return x.sizes[no], true
}

// Packs returns every pack with its size and blobs.
func (x *Index) Packs() []Pack {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]Pack, len(x.packs))
	for i, id := range x.packs {
		out[i] = Pack{ID: id, Size: x.sizes[i]}
	}
	for _, s := range [][]item{x.sorted, x.added} {
		for _, it := range s {
			out[it.packNo].Blobs = append(out[it.packNo].Blobs, x.loc(it).Entry)
		}
	}
	for i := range out {
		slices.SortFunc(out[i].Blobs, func(a, b pack.Entry) int { return int(a.Offset) - int(b.Offset) })
	}
	return out
}
