package volume

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/strategytest"
)

// TestArchiveAPIExcludes: through the Engine's archive API the stream lacks the excluded
// entries and everything below an excluded directory, and the manifest's source records the
// patterns.
func TestArchiveAPIExcludes(t *testing.T) {
	f := strategytest.NewFakeEngine()
	for _, p := range []string{"/data/keep.txt", "/data/app.log", "/data/logs/a.log", "/data/logs/keep.txt",
		"/data/cache/x", "/data/cache/sub/keep.txt", "/data/d/cache", "/data/tmp/f", "/data/d/tmp/f"} {
		f.Files[p] = "content of " + p
	}
	c := f.Container(t)
	v, err := New([]string{"/data"}, []string{"*.log", "cache/", "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	src, err := v.Backup(context.Background(), c, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(hdr.Name, "/"))
	}
	want := []string{"data", "data/d", "data/d/cache", "data/d/tmp", "data/d/tmp/f", "data/keep.txt", "data/logs", "data/logs/keep.txt"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("archived %q, want %q", names, want)
	}
	if src[SourceExclude] != "*.log\ncache/\n/tmp" || !slices.Equal(Excluded(src), []string{"*.log", "cache/", "/tmp"}) {
		t.Errorf("source %q", src)
	}
	all, err := New([]string{"/data"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if src, err := all.Backup(context.Background(), c, io.Discard); err != nil || src[SourceExclude] != "" {
		t.Errorf("without patterns: %q, %v", src, err)
	}
}

func TestNewRefusesBadPatterns(t *testing.T) {
	_, err := New([]string{"/data"}, []string{"ok", "**/[z"})
	if err == nil || !strings.Contains(err.Error(), `"**/[z"`) || !strings.Contains(err.Error(), "a leading / anchors") {
		t.Errorf("New with a bad pattern: %v", err)
	}
}
