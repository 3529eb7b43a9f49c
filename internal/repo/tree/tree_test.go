package tree

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// TestEncode: entries sorted, the same tree always the same bytes (whatever the order added
// and the time zone), unsafe names and duplicates refused.
func TestEncode(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	a := &Tree{Nodes: []Node{{Name: "b", Type: File, MTime: at}, {Name: "a", Type: Symlink, LinkTarget: "b", MTime: at.UTC()}}}
	b := &Tree{Nodes: []Node{{Name: "a", Type: Symlink, LinkTarget: "b", MTime: at}, {Name: "b", Type: File, MTime: at.UTC()}}}
	ea, err := Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := Encode(b)
	if err != nil || !bytes.Equal(ea, eb) {
		t.Fatalf("one tree, two encodings: %s / %s (%v)", ea, eb, err)
	}
	d, err := Decode(ea)
	if err != nil || d.Nodes[0].Name != "a" {
		t.Fatalf("decode: %v", err)
	}
	if _, err := Encode(&Tree{Nodes: []Node{{Name: "x", Type: File}, {Name: "x", Type: File}}}); err == nil {
		t.Fatal("two entries of one name encoded")
	}
	sub := blob.ID{1}
	for _, bad := range []string{
		`{"nodes":[{"name":"..","type":"file"}]}`,
		`{"nodes":[{"name":"a/b","type":"file"}]}`,
		`{"nodes":[{"name":"d","type":"dir"}]}`,
		`{"nodes":[{"name":"h","type":"hardlink","link_target":"../../etc/passwd"}]}`,
		`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`,
		`{"nodes":[{"name":"w","type":"whiteout"}]}`,
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
	if _, err := Decode([]byte(`{"nodes":[{"name":"d","type":"dir","subtree":"` + sub.String() + `"}]}`)); err != nil {
		t.Fatal(err)
	}
}

// TestSelected: selection of paths and their ancestors.
func TestSelected(t *testing.T) {
	for _, c := range []struct {
		p           string
		in, descend bool
	}{{"a", false, true}, {"a/b", true, true}, {"a/b/c", true, true}, {"a/bc", false, false}, {"z", false, false}} {
		in, d := Selected([]string{"a/b"}, c.p)
		if in != c.in || d != c.descend {
			t.Errorf("%s: in=%v descend=%v", c.p, in, d)
		}
	}
	if in, _ := Selected(nil, strings.Repeat("x/", 5)+"y"); !in {
		t.Error("no selection selects everything")
	}
}

// TestFinder: entries found by path in a depth-first walk, directories left behind dropped.
func TestFinder(t *testing.T) {
	store := map[blob.ID]*Tree{}
	k, _ := blob.NewPlain(bytes.Repeat([]byte{5}, 32), "")
	b := NewBuilder(func(dir string, enc []byte) (blob.ID, error) {
		tr, err := Decode(enc)
		id := k.BlobID(enc)
		store[id] = tr
		return id, err
	})
	for _, p := range []string{"a/x", "a/b/y", "c/z"} {
		if err := b.Add(p, Node{Type: File, Size: int64(len(p))}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := b.Finish()
	if err != nil || b.Dirs != 4 {
		t.Fatalf("%d directories, %v", b.Dirs, err)
	}
	loads := 0
	f := NewFinder(func(ctx context.Context, id blob.ID) (*Tree, error) { loads++; return store[id], nil }, root)
	for _, p := range []string{"a/x", "a/b/y", "a/missing", "c/z", "q/r"} {
		n, err := f.Find(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if (n != nil) != (p != "a/missing" && p != "q/r") || n != nil && n.Size != int64(len(p)) {
			t.Fatalf("%s: %+v", p, n)
		}
	}
	if loads != 4 || len(f.trees) > 2 {
		t.Fatalf("%d trees loaded, %d kept", loads, len(f.trees))
	}
}
