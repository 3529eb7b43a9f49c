// Package blob names, compresses and encrypts the blobs of an incremental repository: a
// blob's ID is HMAC-SHA256 of its plaintext under the repository's chunk-ID key; what is
// stored is the plaintext compressed with zstd (when that makes it smaller) and, in an
// encrypted repository, sealed with XChaCha20-Poly1305 under a fresh random nonce.
package blob

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// ID names a blob (HMAC-SHA256 of its plaintext), a pack or an index (SHA-256 of its bytes).
type ID [32]byte

// String is the ID in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the ID in hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	*id = p
	return err
}

// ParseID reads an ID's hex form.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("ID %q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("ID %q is not hex", s)
	}
	return id, nil
}

// Sum is the SHA-256 of b as an ID (packs, index files, snapshots are named so).
func Sum(b []byte) ID { return sha256.Sum256(b) }

// Type is what a blob holds.
type Type uint8

// Blob types.
const (
	Data Type = 1 // file content
	Tree Type = 2 // a directory's entries
)

func (t Type) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// Compression of a stored blob.
const (
	Raw  = 0 // stored as is: compression did not make it smaller
	Zstd = 1
)

// MasterKeySize is the size of a repository's master key and of its chunk-ID key.
const MasterKeySize = 32

// Keys are a repository's keys: the chunk-ID key and, when the repository is encrypted, the
// AEAD key derived from its master key. Safe for concurrent use.
type Keys struct {
	idKey []byte
	aead  *aeadKey
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	smu   sync.Mutex    // guards sdec
	sdec  *zstd.Decoder // streaming, for Decompress
}

type aeadKey struct{ key []byte }

// Derive derives a subkey of master for purpose with HKDF-SHA256.
func Derive(master []byte, purpose string) []byte {
	out := make([]byte, 32)
	r := hkdf.New(sha256.New, master, nil, []byte("docker-backup repository v1 "+purpose))
	if _, err := io.ReadFull(r, out); err != nil {
		panic(err) // HKDF yields 255*32 bytes: never fails for 32
	}
	return out
}

// Level is how hard zstd works: "fastest" (the default: about zstd -1, twice as fast as
// "default"), "default" (about zstd -3) or "better" (about zstd -7).
type Level string

func (l Level) zstd() (zstd.EncoderLevel, error) {
	switch l {
	case "", "fastest":
		return zstd.SpeedFastest, nil
	case "default":
		return zstd.SpeedDefault, nil
	case "better":
		return zstd.SpeedBetterCompression, nil
	}
	return 0, fmt.Errorf("compression level %q is not fastest, default or better", string(l))
}

// NewPlain returns the keys of an unencrypted repository: only the chunk-ID key.
func NewPlain(idKey []byte, level Level) (*Keys, error) {
	if len(idKey) != MasterKeySize {
		return nil, fmt.Errorf("the chunk-ID key must be %d bytes (it is %d)", MasterKeySize, len(idKey))
	}
	return newKeys(idKey, nil, level)
}

// NewEncrypted returns the keys of an encrypted repository, derived from its master key.
func NewEncrypted(master []byte, level Level) (*Keys, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("the master key must be %d bytes (it is %d)", MasterKeySize, len(master))
	}
	return newKeys(Derive(master, "chunk-id"), &aeadKey{key: Derive(master, "xchacha20poly1305")}, level)
}

func newKeys(idKey []byte, a *aeadKey, level Level) (*Keys, error) {
	lvl, err := level.zstd()
	if err != nil {
		return nil, err
	}
	// Literals are entropy-coded even in blocks without matches (text of a skewed alphabet:
	// base64, hex dumps, logs), which the faster levels otherwise store as they are: on the
	// bench's volume, 540 MB stored instead of 706 MB for the same time.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true),
		zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, err
	}
	return &Keys{idKey: idKey, aead: a, enc: enc, dec: dec}, nil
}

// Encrypted reports whether blobs are sealed.
func (k *Keys) Encrypted() bool { return k.aead != nil }

// Hasher returns a fresh HMAC for blob IDs (not safe for concurrent use; Reset between blobs).
func (k *Keys) Hasher() hash.Hash { return hmac.New(sha256.New, k.idKey) }

// BlobID is the ID of plaintext b.
func (k *Keys) BlobID(b []byte) ID {
	h := k.Hasher()
	h.Write(b)
	var id ID
	h.Sum(id[:0])
	return id
}

// Encode compresses and seals plaintext, appending the stored form to dst. It returns the
// stored bytes and the compression used.
func (k *Keys) Encode(dst, plain []byte) ([]byte, uint8, error) {
	start := len(dst)
	comp := uint8(Zstd)
	var body []byte
	if k.aead != nil {
		dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	}
	bodyStart := len(dst)
	if incompressible(plain) {
		dst = append(dst, plain...)
	} else {
		dst = k.enc.EncodeAll(plain, dst)
	}
	if len(dst)-bodyStart >= len(plain) {
		comp = Raw
		dst = append(dst[:bodyStart], plain...)
	}
	if k.aead == nil {
		return dst, comp, nil
	}
	dst = append(dst, make([]byte, chacha20poly1305.Overhead)...) // room for the tag, in place
	dst = dst[:len(dst)-chacha20poly1305.Overhead]
	body = dst[bodyStart:]
	nonce := dst[start:bodyStart]
	if _, err := rand.Read(nonce); err != nil {
		return nil, 0, err
	}
	c, err := chacha20poly1305.NewX(k.aead.key)
	if err != nil {
		return nil, 0, err
	}
	sealed := c.Seal(body[:0], nonce, body, nil)
	return dst[:bodyStart+len(sealed)], comp, nil
}

// Seal encrypts b when the repository is encrypted (metadata: pack headers, index files,
// snapshots); otherwise it returns b.
func (k *Keys) Seal(b []byte) ([]byte, error) {
	if k.aead == nil {
		return b, nil
	}
	c, err := chacha20poly1305.NewX(k.aead.key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, c.NonceSize(), c.NonceSize()+len(b)+c.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return c.Seal(out, out, b, nil), nil
}

// maxDecoded bounds a blob's plaintext (chunks are at most a few MiB; a tree blob of a huge
// directory more).
const maxDecoded = 1 << 30

// ErrAuth is wrapped when stored bytes fail authentication or do not match their ID.
var ErrAuth = errors.New("authentication failed (damaged or tampered with)")

// Unseal reverses Seal.
func (k *Keys) Unseal(b []byte) ([]byte, error) {
	if k.aead == nil {
		return b, nil
	}
	c, err := chacha20poly1305.NewX(k.aead.key)
	if err != nil {
		return nil, err
	}
	if len(b) < c.NonceSize()+c.Overhead() {
		return nil, fmt.Errorf("%d bytes are too short to be sealed: %w", len(b), ErrAuth)
	}
	out, err := c.Open(nil, b[:c.NonceSize()], b[c.NonceSize():], nil)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// Compress compresses metadata with zstd.
func (k *Keys) Compress(b []byte) []byte { return k.enc.EncodeAll(b, nil) }

// Decompress reverses Compress; limit bounds the plaintext size. It stops at limit (streaming):
// a small object that would decompress to far more (a "bomb" put in an unencrypted
// repository, whose metadata is not authenticated) costs no more memory than limit.
func (k *Keys) Decompress(b []byte, limit int) ([]byte, error) {
	k.smu.Lock()
	defer k.smu.Unlock()
	if k.sdec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, err
		}
		k.sdec = d
	}
	if err := k.sdec.Reset(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	defer k.sdec.Reset(nil)
	out, err := io.ReadAll(io.LimitReader(k.sdec, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes: %w", limit, ErrAuth)
	}
	return out, nil
}

// Decode opens a stored blob, checks that it decompresses to rawLen bytes whose ID is id,
// and returns the plaintext (appended to dst).
func (k *Keys) Decode(dst, stored []byte, comp uint8, rawLen int, id ID) ([]byte, error) {
	body, err := k.Unseal(stored)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", id, err)
	}
	start := len(dst)
	switch comp {
	case Raw:
		dst = append(dst, body...)
	case Zstd:
		// Room for exactly the plaintext, and no more is decoded (WithDecodeAllCapLimit):
		// a small stored blob that would decompress to far more is refused there.
		if rawLen < 0 || rawLen > maxDecoded {
			return nil, fmt.Errorf("blob %s: a plaintext of %d bytes is more than a blob holds: %w", id, rawLen, ErrAuth)
		}
		dst = slices.Grow(dst, rawLen)
		if dst, err = k.dec.DecodeAll(body, dst[:start:start+rawLen]); err != nil {
			return nil, fmt.Errorf("blob %s: decompressing: %v: %w", id, err, ErrAuth)
		}
	default:
		return nil, fmt.Errorf("blob %s: compression %d is not 0 (none) or 1 (zstd): %w", id, comp, ErrAuth)
	}
	plain := dst[start:]
	if len(plain) != rawLen {
		return nil, fmt.Errorf("blob %s: %d bytes, the index says %d: %w", id, len(plain), rawLen, ErrAuth)
	}
	if got := k.BlobID(plain); got != id {
		return nil, fmt.Errorf("blob %s: its content hashes to %s: %w", id, got, ErrAuth)
	}
	return dst, nil
}

// incompressible guesses from samples whether b is already compressed or encrypted (media,
// archives): then it is stored without trying zstd, which would spend its time for nothing.
func incompressible(b []byte) bool {
	const sample = 4096
	if len(b) < 4*sample {
		return false
	}
	var hist [256]int
	for i := range 4 {
		off := i * (len(b) - sample) / 3
		for _, c := range b[off : off+sample] {
			hist[c]++
		}
	}
	// Shannon entropy of the samples, in bits per byte.
	n := float64(4 * sample)
	e := 0.0
	for _, h := range hist {
		if h > 0 {
			p := float64(h) / n
			e -= p * math.Log2(p)
		}
	}
	return e > 7.9
}
