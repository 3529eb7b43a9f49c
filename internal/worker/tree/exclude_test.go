//go:build linux

package tree

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// TestArchiveExcludes: the archive lacks exactly the entries the patterns exclude (and what is
// below an excluded directory), and its digest is that of the same tree without them — what a
// restore of it into an empty volume gives.
func TestArchiveExcludes(t *testing.T) {
	base := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each entry: its name, and whether the patterns exclude it.
	tree := []struct {
		name     string
		dir      bool
		excluded bool
	}{
		{"keep.txt", false, false},
		{"app.log", false, true},        // *.log
		{"important.log", false, false}, // !important.log
		{"logs", true, false},
		{"logs/a.log", false, true},
		{"logs/keep.txt", false, false},
		{"cache", true, true}, // cache/
		{"cache/x", false, true},
		{"cache/sub", true, true},
		{"cache/sub/keep.txt", false, true}, // below an excluded directory
		{"d", true, false},
		{"d/cache", false, false}, // a file: cache/ matches directories only
		{"d/tmp", true, false},    // /tmp is anchored
		{"d/tmp/f", false, false},
		{"tmp", true, true},
		{"tmp/f", false, true},
		{"media", true, false},
		{"media/thumbs", true, false}, // media/thumbs/** keeps the directory, empty
		{"media/thumbs/a.jpg", false, true},
		{"media/thumbs/x", true, true},
		{"media/photo.jpg", false, false},
		{"file1.bin", false, true}, // file?.bin
		{"file10.bin", false, false},
	}
	patterns := []string{"*.log", "!important.log", "cache/", "/tmp", "media/thumbs/**", "file?.bin"}
	build := func(dir string, withExcluded bool) {
		must(os.MkdirAll(dir, 0o755))
		for _, e := range tree {
			if e.excluded && !withExcluded {
				continue
			}
			p := filepath.Join(dir, e.name)
			if e.dir {
				must(os.MkdirAll(p, 0o750))
			} else {
				must(os.WriteFile(p, []byte("content of "+e.name), 0o640))
			}
		}
	}
	src, want := filepath.Join(base, "src"), filepath.Join(base, "want")
	build(src, true)
	build(want, false)
	// A hard link kept whose other name is excluded: it is archived whole.
	must(os.Link(filepath.Join(src, "cache/x"), filepath.Join(src, "hard.txt")))
	must(os.WriteFile(filepath.Join(want, "hard.txt"), []byte("content of cache/x"), 0o640))

	excl, err := exclude.Compile(patterns)
	must(err)
	var buf bytes.Buffer
	got, err := ArchiveRoots(context.Background(), []Root{{Dir: base, Rel: "src", Name: "data"}}, nil, excl, &buf)
	must(err)
	wantContents, err := ArchiveRoots(context.Background(), []Root{{Dir: base, Rel: "want", Name: "data"}}, nil, nil, io.Discard)
	must(err)
	if got.Tree != wantContents.Tree || got.Files != wantContents.Files || got.Bytes != wantContents.Bytes {
		t.Errorf("the archive's contents %+v, want those of the tree without the excluded entries %+v", got, wantContents)
	}

	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(err)
		if hdr.Name == "data/hard.txt" && hdr.Typeflag != tar.TypeReg {
			t.Errorf("hard.txt is a %c entry, want the file itself (its other name is excluded)", hdr.Typeflag)
		}
		names = append(names, strings.TrimPrefix(strings.TrimSuffix(hdr.Name, "/"), "data/"))
	}
	wantNames := []string{"data", "hard.txt"}
	for _, e := range tree {
		if !e.excluded {
			wantNames = append(wantNames, e.name)
		}
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("archived:\n  %s\nwant:\n  %s", strings.Join(names, "\n  "), strings.Join(wantNames, "\n  "))
	}

	// The volume strategy digests the stream as the archive did.
	count := (&volume.Strategy{}).NewCount()
	var again bytes.Buffer
	_, err = ArchiveRoots(context.Background(), []Root{{Dir: base, Rel: "src", Name: "data"}}, nil, excl, &again)
	must(err)
	_, err = count.Write(again.Bytes())
	must(err)
	parsed, err := count.Contents()
	must(err)
	if parsed.Tree != got.Tree {
		t.Errorf("the stream's digest %s, the archive's %s", parsed.Tree, got.Tree)
	}
}
