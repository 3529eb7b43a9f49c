package index

import (
	"bytes"
	"testing"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// TestIndex: lookups before and after Freeze, a pack listed twice counted once, and an index
// file's round trip (encrypted).
func TestIndex(t *testing.T) {
	k, err := blob.NewEncrypted(bytes.Repeat([]byte{3}, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	x := New()
	var files []File
	for p := range 3 {
		pk := Pack{ID: blob.Sum([]byte{byte(p)}), Size: 1000}
		for i := range 50 {
			pk.Blobs = append(pk.Blobs, pack.Entry{ID: k.BlobID([]byte{byte(p), byte(i)}), Type: blob.Data, Offset: uint32(i * 10), Length: 10, Raw: 20})
		}
		files = append(files, File{Packs: []Pack{pk}})
	}
	for _, f := range files {
		b, err := Encode(k, f)
		if err != nil {
			t.Fatal(err)
		}
		g, err := Decode(k, b)
		if err != nil {
			t.Fatal(err)
		}
		x.Add(g)
	}
	x.Add(files[0]) // listed twice (an interrupted prune)
	check := func() {
		t.Helper()
		for _, f := range files {
			for _, e := range f.Packs[0].Blobs {
				loc, ok := x.Lookup(e.ID)
				if !ok || loc.Pack != f.Packs[0].ID || loc.Entry != e {
					t.Fatalf("lookup of %s: %+v %v", e.ID, loc, ok)
				}
			}
		}
		if x.Has(blob.ID{1}) {
			t.Fatal("an unknown blob is found")
		}
	}
	check()
	x.Freeze()
	check()
	if x.Len() != 150 || len(x.Packs()) != 3 || len(x.Packs()[0].Blobs) != 50 {
		t.Fatalf("%d blobs in %d packs", x.Len(), len(x.Packs()))
	}
	if _, err := Decode(k, []byte("garbage that is not sealed")); err == nil {
		t.Fatal("garbage decoded")
	}
	if got := Split(x.Packs(), 60); len(got) != 2 {
		t.Fatalf("split into %d files, want 2", len(got))
	}
}

// TestSet: IDs found after they move into sorted runs.
func TestSet(t *testing.T) {
	var s Set
	k, _ := blob.NewPlain(bytes.Repeat([]byte{4}, 32), "")
	for i := range 3*setRun + 5 {
		s.Add(k.BlobID([]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
	}
	for i := range 3*setRun + 5 {
		if !s.Has(k.BlobID([]byte{byte(i), byte(i >> 8), byte(i >> 16)})) {
			t.Fatalf("lost ID %d", i)
		}
	}
	if s.Has(k.BlobID([]byte("never added"))) || len(s.runs) > 2 {
		t.Fatalf("%d runs, or an ID never added is found", len(s.runs))
	}
}
