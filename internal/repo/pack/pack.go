// Package pack builds and reads packs: objects of a few MiB holding stored blobs one after
// another, then a header listing them (sealed like the blobs), then the header's length as a
// 4-byte little-endian number. A pack's ID is the SHA-256 of its bytes.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Entry locates one blob in a pack.
type Entry struct {
	ID     blob.ID
	Type   blob.Type
	Comp   uint8  // blob.Raw or blob.Zstd
	Offset uint32 // of the stored blob in the pack
	Length uint32 // of the stored blob
	Raw    uint32 // length of the plaintext
}

// entrySize is one header entry: type, compression, offset, length, raw length, ID.
const entrySize = 1 + 1 + 4 + 4 + 4 + 32

// headerVersion starts every header.
const headerVersion = 1

// MaxHeader bounds a header's size (a pack of a million blobs).
const MaxHeader = 1 + entrySize*1_000_000 + 64

// Builder assembles one pack in memory.
type Builder struct {
	buf     []byte
	entries []Entry
}

// NewBuilder returns a builder with room for size bytes.
func NewBuilder(size int) *Builder { return &Builder{buf: make([]byte, 0, size+size/8)} }

// Reuse returns a builder that writes into buf (a finished pack's bytes, no longer needed).
func Reuse(buf []byte) *Builder { return &Builder{buf: buf[:0]} }

// Add appends a stored blob.
func (b *Builder) Add(id blob.ID, t blob.Type, comp uint8, stored []byte, raw int) {
	b.entries = append(b.entries, Entry{ID: id, Type: t, Comp: comp, Offset: uint32(len(b.buf)), Length: uint32(len(stored)), Raw: uint32(raw)})
	b.buf = append(b.buf, stored...)
}

// Size is the bytes added so far.
func (b *Builder) Size() int { return len(b.buf) }

// Count is the number of blobs added.
func (b *Builder) Count() int { return len(b.entries) }

// Finish appends the header and returns the pack's bytes, its ID and its entries.
func (b *Builder) Finish(k *blob.Keys) ([]byte, blob.ID, []Entry, error) {
	h := make([]byte, 1, 1+entrySize*len(b.entries))
	h[0] = headerVersion
	for _, e := range b.entries {
		h = append(h, byte(e.Type), e.Comp)
		h = binary.LittleEndian.AppendUint32(h, e.Offset)
		h = binary.LittleEndian.AppendUint32(h, e.Length)
		h = binary.LittleEndian.AppendUint32(h, e.Raw)
		h = append(h, e.ID[:]...)
	}
	sealed, err := k.Seal(h)
	if err != nil {
		return nil, blob.ID{}, nil, err
	}
	out := append(b.buf, sealed...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sealed)))
	return out, blob.Sum(out), b.entries, nil
}

// ErrDamaged is wrapped when a pack cannot be parsed.
var ErrDamaged = errors.New("the pack is damaged")

// Header reads the header of a whole pack and checks that its entries tile the pack's blob
// region exactly.
func Header(k *blob.Keys, p []byte) ([]Entry, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%d bytes: %w", len(p), ErrDamaged)
	}
	n := int(binary.LittleEndian.Uint32(p[len(p)-4:]))
	if n > len(p)-4 || n > MaxHeader {
		return nil, fmt.Errorf("header length %d does not fit a pack of %d bytes: %w", n, len(p), ErrDamaged)
	}
	start := len(p) - 4 - n
	h, err := k.Unseal(p[start : len(p)-4])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(h) < 1 || h[0] != headerVersion || (len(h)-1)%entrySize != 0 {
		return nil, fmt.Errorf("header is not version %d with whole entries: %w", headerVersion, ErrDamaged)
	}
	entries := make([]Entry, 0, (len(h)-1)/entrySize)
	next := uint32(0)
	for r := h[1:]; len(r) > 0; r = r[entrySize:] {
		e := Entry{Type: blob.Type(r[0]), Comp: r[1], Offset: binary.LittleEndian.Uint32(r[2:]), Length: binary.LittleEndian.Uint32(r[6:]), Raw: binary.LittleEndian.Uint32(r[10:])}
		copy(e.ID[:], r[14:46])
		if e.Offset != next || uint64(e.Offset)+uint64(e.Length) > uint64(start) {
			return nil, fmt.Errorf("blob %s at %d+%d does not follow the previous one (%d) inside the blob region (%d): %w", e.ID, e.Offset, e.Length, next, start, ErrDamaged)
		}
		next = e.Offset + e.Length
		entries = append(entries, e)
	}
	if int(next) != start {
		return nil, fmt.Errorf("blobs end at %d, the header starts at %d: %w", next, start, ErrDamaged)
	}
	return entries, nil
}

// Stored returns entry e's stored bytes in pack p.
func Stored(p []byte, e Entry) ([]byte, error) {
	end := uint64(e.Offset) + uint64(e.Length)
	if end > uint64(len(p)) {
		return nil, fmt.Errorf("blob %s at %d+%d is beyond the pack's %d bytes: %w", e.ID, e.Offset, e.Length, len(p), ErrDamaged)
	}
	return p[e.Offset:end], nil
}
