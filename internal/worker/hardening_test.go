package worker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHardLinkBetweenPaths: a file hard-linked from two backed-up paths of one volume is
// archived whole in each path (one map of links per path), so the archive passes the restore's
// tar policy — which keeps each path's links inside it — and restores both files.
func TestHardLinkBetweenPaths(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "a"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "b"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a/x"), []byte("shared\n"), 0o644))
	must(os.Link(filepath.Join(src, "a/x"), filepath.Join(src, "b/y")))
	must(os.Link(filepath.Join(src, "b/y"), filepath.Join(src, "b/z"))) // a link inside b stays one
	paths := []string{filepath.Join(src, "a"), filepath.Join(src, "b")}
	var buf bytes.Buffer
	_, err := Archive(context.Background(), paths, []string{src}, &buf)
	must(err)

	must(os.RemoveAll(filepath.Join(src, "a")))
	must(os.RemoveAll(filepath.Join(src, "b")))
	if err := Extract(context.Background(), bytes.NewReader(buf.Bytes()), paths, []string{src}, false); err != nil {
		t.Fatalf("the archive of two paths sharing a file does not restore: %v", err)
	}
	for _, name := range []string{"a/x", "b/y", "b/z"} {
		if b, err := os.ReadFile(filepath.Join(src, name)); err != nil || string(b) != "shared\n" {
			t.Errorf("%s after the restore: %q, %v", name, b, err)
		}
	}
	tree := listTree(t, src)
	if !strings.Contains(tree, "/b/y -rw-r--r-- 0:0 size=7") || !strings.Contains(tree, "nlink=2") {
		t.Errorf("b/y and b/z are not one file again:\n%s", tree)
	}
}
