package volume

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

type entry struct {
	hdr     tar.Header
	content string
}

func tree(t *testing.T, entries ...entry) *artifact.Contents {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.content))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.content))
	}
	_ = tw.Close()
	return strategytest.Feed(t, (&Strategy{}).NewCount(), b.Bytes())
}

func TestTreeDigest(t *testing.T) {
	dir := entry{hdr: tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}}
	a := entry{hdr: tar.Header{Name: "data/a", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1}, content: "hello"}
	bLink := entry{hdr: tar.Header{Name: "data/b", Typeflag: tar.TypeLink, Linkname: "data/a", Mode: 0o644, Uid: 1}}
	b := entry{hdr: tar.Header{Name: "data/b", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1}, content: "hello"}
	aLink := entry{hdr: tar.Header{Name: "data/a", Typeflag: tar.TypeLink, Linkname: "data/b", Mode: 0o644, Uid: 1}}
	sym := entry{hdr: tar.Header{Name: "data/s", Typeflag: tar.TypeSymlink, Linkname: "a", Mode: 0o777}}

	base := tree(t, dir, a, bLink, sym)
	if base.Files != 4 || base.Bytes != 5 {
		t.Fatalf("counted %d entries of %d bytes, want 4 and 5", base.Files, base.Bytes)
	}
	// Another order, and the hard link's content under its other name: the same tree.
	if other := tree(t, sym, b, aLink, dir); other.Tree != base.Tree {
		t.Fatalf("the same tree in another order digests differently: %s, %s", other.Tree, base.Tree)
	}
	changed := a
	changed.content = "hellO"
	mode := a
	mode.hdr.Mode = 0o600
	owner := a
	owner.hdr.Uid = 2
	target := sym
	target.hdr.Linkname = "b"
	for name, e := range map[string][]entry{"content": {dir, changed, bLink, sym}, "mode": {dir, mode, bLink, sym},
		"owner": {dir, owner, bLink, sym}, "link target": {dir, a, bLink, target}, "missing entry": {dir, a, bLink}} {
		if got := tree(t, e...); got.Tree == base.Tree {
			t.Errorf("a changed %s digests the same", name)
		}
	}
}
