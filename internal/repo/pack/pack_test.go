package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

func keys(t *testing.T, encrypted bool) *blob.Keys {
	t.Helper()
	var k *blob.Keys
	var err error
	if encrypted {
		k, err = blob.NewEncrypted(bytes.Repeat([]byte{1}, 32), "")
	} else {
		k, err = blob.NewPlain(bytes.Repeat([]byte{2}, 32), "")
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPack: blobs packed and read back by their header, every byte of the pack covered; a
// flipped byte anywhere is found by Verify.
func TestPack(t *testing.T) {
	for _, enc := range []bool{false, true} {
		k := keys(t, enc)
		b := NewBuilder(1 << 20)
		plain := [][]byte{bytes.Repeat([]byte("abc"), 5000), {}, []byte("x"), bytes.Repeat([]byte{7}, 100000)}
		for i, p := range plain {
			stored, comp, err := k.Encode(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			b.Add(k.BlobID(p), blob.Type(1+i%2), comp, stored, len(p))
		}
		data, id, entries, err := b.Finish(k)
		if err != nil {
			t.Fatal(err)
		}
		if id != blob.Sum(data) {
			t.Fatal("the pack's ID is not its hash")
		}
		got, err := Header(k, data)
		if err != nil || len(got) != len(plain) {
			t.Fatalf("header: %d entries, %v", len(got), err)
		}
		for i, e := range got {
			if e != entries[i] {
				t.Fatalf("entry %d: %+v, built %+v", i, e, entries[i])
			}
			st, err := Stored(data, e)
			if err != nil {
				t.Fatal(err)
			}
			p, err := k.Decode(nil, st, e.Comp, int(e.Raw), e.ID)
			if err != nil || !bytes.Equal(p, plain[i]) {
				t.Fatalf("blob %d: %v", i, err)
			}
		}
		if err := Verify(k, data, entries); err != nil {
			t.Fatal(err)
		}
		for _, at := range []int{0, len(data) / 2, len(data) - 10, len(data) - 1} {
			bad := bytes.Clone(data)
			bad[at] ^= 0x40
			if err := Verify(k, bad, entries); err == nil {
				t.Fatalf("encrypted=%v: a byte flipped at %d of %d was not found", enc, at, len(data))
			}
		}
		if _, err := Header(k, data[:3]); !errors.Is(err, ErrDamaged) {
			t.Fatalf("a truncated pack: %v", err)
		}
	}
}
