package index

import (
	"bytes"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
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
	signer, trust := testSigner(t, 1)
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
		b, err := Encode(k, signer, f)
		if err != nil {
			t.Fatal(err)
		}
		g, err := Decode(k, trust, b)
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
	if _, err := Decode(k, trust, []byte("garbage that is not sealed")); err == nil {
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

func testSigner(t *testing.T, seed byte) (*artifact.SigningKey, *artifact.Keyring) {
	t.Helper()
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return signer, artifact.NewKeyring(signer)
}

// TestIndexFileSigned: an unencrypted repository's index file (whose chunk-ID key anyone who
// reads the repository has) is taken only when a trusted key signed it as it is.
func TestIndexFileSigned(t *testing.T) {
	k, err := blob.NewPlain(bytes.Repeat([]byte{4}, 32), "")
	if err != nil {
		t.Fatal(err)
	}
	signer, trust := testSigner(t, 1)
	other, _ := testSigner(t, 2)
	f := File{Packs: []Pack{{ID: blob.Sum([]byte("p")), Size: 100, Blobs: []pack.Entry{{ID: k.BlobID([]byte("x")), Type: blob.Data, Length: 10, Raw: 10}}}}}
	good, err := Encode(k, signer, f)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := Decode(k, trust, good); err != nil || len(g.Packs) != 1 || g.Packs[0].Blobs[0] != f.Packs[0].Blobs[0] {
		t.Fatalf("the signed index file: %+v, %v", g, err)
	}
	forged, err := Encode(k, other, f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(k, trust, forged); err == nil {
		t.Fatal("an index file signed by an untrusted key was taken")
	}
	if _, err := Encode(k, nil, f); err == nil {
		t.Fatal("an index file was written without a signing key")
	}
	// The listing changed under its signature: a blob's length.
	plain, err := k.Decompress(good, MaxFile)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(plain, []byte(`"length":10`), []byte(`"length":11`), 1)
	if bytes.Equal(tampered, plain) {
		t.Fatalf("the test's edit did not apply to %s", plain)
	}
	if _, err := Decode(k, trust, k.Compress(tampered)); err == nil {
		t.Fatal("a tampered index file was taken")
	}
}
