package blob

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestEncode: blobs round trip in plain and encrypted repositories, compressible ones
// compressed, random ones stored as they are; a blob under another ID, or one byte changed,
// is refused; encryption is randomized (two encodings differ).
func TestEncode(t *testing.T) {
	random := make([]byte, 100<<10)
	rand.NewChaCha8([32]byte{}).Read(random)
	text := bytes.Repeat([]byte("docker-backup "), 10000)
	plain, err := NewPlain(bytes.Repeat([]byte{1}, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncrypted(bytes.Repeat([]byte{2}, 32), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Keys{plain, enc} {
		for _, c := range []struct {
			data []byte
			comp uint8
		}{{random, Raw}, {text, Zstd}, {nil, Raw}} {
			id := k.BlobID(c.data)
			stored, comp, err := k.Encode(nil, c.data)
			if err != nil || comp != c.comp {
				t.Fatalf("encrypted=%v: compression %d, want %d (%v)", k.Encrypted(), comp, c.comp, err)
			}
			got, err := k.Decode(nil, stored, comp, len(c.data), id)
			if err != nil || !bytes.Equal(got, c.data) {
				t.Fatalf("round trip: %v", err)
			}
			if _, err := k.Decode(nil, stored, comp, len(c.data), k.BlobID([]byte("other"))); !errors.Is(err, ErrAuth) {
				t.Fatalf("under another ID: %v", err)
			}
			if len(stored) > 0 {
				bad := bytes.Clone(stored)
				bad[len(bad)/2] ^= 1
				if _, err := k.Decode(nil, bad, comp, len(c.data), id); !errors.Is(err, ErrAuth) {
					t.Fatalf("a flipped byte: %v", err)
				}
			}
		}
	}
	a, _, _ := enc.Encode(nil, text)
	b, _, _ := enc.Encode(nil, text)
	if bytes.Equal(a, b) || bytes.Contains(a, []byte("docker-backup")) {
		t.Fatal("encryption is deterministic or leaves plaintext")
	}
	if plain.BlobID(text) == enc.BlobID(text) {
		t.Fatal("two repositories' keys give one blob ID")
	}
	if _, err := NewPlain(make([]byte, 32), "max"); err == nil {
		t.Fatal("an unknown compression level was accepted")
	}
}
