package index

import (
	"bytes"
	"testing"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

// TestRedteamConflictingListing: a pack listed again with the same blobs (an interrupted
// prune) is fine; listed again with other blobs (a forged index file that would shadow the
// real listing) is refused.
func TestRedteamConflictingListing(t *testing.T) {
	k, _ := blob.NewPlain(bytes.Repeat([]byte{4}, 32), "")
	pk := Pack{ID: blob.Sum([]byte("p")), Size: 100}
	for i := range 3 {
		pk.Blobs = append(pk.Blobs, pack.Entry{ID: k.BlobID([]byte{byte(i)}), Type: blob.Data, Offset: uint32(i * 10), Length: 10, Raw: 10})
	}
	x := New()
	if err := x.Add(File{Packs: []Pack{pk}}); err != nil {
		t.Fatal(err)
	}
	same := pk
	same.Blobs = []pack.Entry{pk.Blobs[2], pk.Blobs[0], pk.Blobs[1]} // another order
	if err := x.Add(File{Packs: []Pack{same}}); err != nil {
		t.Fatalf("the same listing again: %v", err)
	}
	forged := Pack{ID: pk.ID, Size: pk.Size}
	if err := x.Add(File{Packs: []Pack{forged}}); err == nil {
		t.Fatal("a listing of the pack without its blobs was taken")
	}
}
