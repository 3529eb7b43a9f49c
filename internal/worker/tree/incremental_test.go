package tree

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
)

// incrEntry is what an incremental stream says of one entry.
type incrEntry struct {
	hdr    *tar.Header
	sha256 string
}

func readIncremental(t *testing.T, b []byte) (map[string]incrEntry, []string) {
	t.Helper()
	out, order := map[string]incrEntry{}, []string(nil)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, order
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(c)
		out[h.Name] = incrEntry{hdr: h, sha256: hex.EncodeToString(s[:])}
		order = append(order, h.Name)
	}
}

// parentOf is the metadata of a stream's regular files, as the caller sends it.
func parentOf(t *testing.T, entries map[string]incrEntry, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := meta.NewEncoder(&buf)
	for _, name := range order {
		h := entries[name].hdr
		if h.Typeflag != tar.TypeReg {
			continue
		}
		ino, _ := strconv.ParseUint(h.PAXRecords[meta.PAXInode], 10, 64)
		if err := e.Add(meta.Record{Path: name, Size: h.Size, MTime: h.ModTime, CTime: h.ChangeTime, Inode: ino}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestArchiveIncremental(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol")
	for name, content := range map[string]string{"a.txt": "alpha", "b/c.bin": "charlie", "b/d.txt": "delta", "e.log": "echo"} {
		p := filepath.Join(vol, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(vol, "b/d.txt"), filepath.Join(vol, "b/link")); err != nil {
		t.Fatal(err)
	}
	roots := []Root{{Dir: dir, Rel: "vol", Name: "data"}}
	var first bytes.Buffer
	st, err := ArchiveIncremental(context.Background(), roots, nil, nil, nil, &first)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 4 || st.Unchanged != 0 || st.Files != 7 {
		t.Fatalf("first run: %+v, want 4 files read of 7 entries", st)
	}
	entries, order := readIncremental(t, first.Bytes())
	wantOrder := []string{"data/", "data/a.txt", "data/b/", "data/b/c.bin", "data/b/d.txt", "data/b/link", "data/e.log"}
	if len(order) != len(wantOrder) {
		t.Fatalf("entries %q, want %q", order, wantOrder)
	}
	for i, name := range order {
		if name != wantOrder[i] {
			t.Fatalf("entries %q, want %q", order, wantOrder)
		}
		h := entries[name].hdr
		fi, err := os.Lstat(filepath.Join(vol, name[len("data"):]))
		if err != nil {
			t.Fatal(err)
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if h.PAXRecords[meta.PAXInode] != strconv.FormatUint(ino, 10) || h.PAXRecords[meta.PAXDev] == "" || h.PAXRecords[meta.PAXNlink] == "" || h.ChangeTime.IsZero() {
			t.Fatalf("%s: PAX records %v, ctime %v: want inode %d, dev, nlink, ctime", name, h.PAXRecords, h.ChangeTime, ino)
		}
	}
	if entries["data/b/link"].hdr.Typeflag != tar.TypeLink || entries["data/b/d.txt"].hdr.PAXRecords[meta.PAXNlink] != "2" {
		t.Fatalf("the hard link: %+v", entries["data/b/link"].hdr)
	}
	parent := parentOf(t, entries, order)

	// 1.5 % of a volume, in small: one file appended to, one new, one deleted, one touched.
	f, err := os.OpenFile(filepath.Join(vol, "a.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" and more")
	f.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(vol, "b/new.txt"), []byte("new"), 0o644))
	must(os.Remove(filepath.Join(vol, "e.log")))
	later := time.Now().Add(time.Hour)
	must(os.Chtimes(filepath.Join(vol, "b/c.bin"), later, later))

	var second bytes.Buffer
	cur := meta.NewCursor(meta.NewDecoder(bytes.NewReader(parent)))
	st, err = ArchiveIncremental(context.Background(), roots, nil, nil, cur, &second)
	if err != nil {
		t.Fatal(err)
	}
	must(cur.Drain())
	if st.Read != 3 || st.Unchanged != 1 || st.UnchangedBytes != 5 {
		t.Fatalf("second run: %+v, want 3 read (a.txt, c.bin, new.txt) and d.txt unchanged (5 bytes)", st)
	}
	entries2, _ := readIncremental(t, second.Bytes())
	d := entries2["data/b/d.txt"].hdr
	if d.Size != 0 || d.PAXRecords[meta.PAXUnchanged] != "5" {
		t.Fatalf("d.txt: size %d, records %v: want a header-only entry marked unchanged (5 bytes)", d.Size, d.PAXRecords)
	}
	for name, want := range map[string]string{"data/a.txt": "alpha and more", "data/b/c.bin": "charlie", "data/b/new.txt": "new"} {
		s := sha256.Sum256([]byte(want))
		e := entries2[name]
		if e.hdr == nil || e.sha256 != hex.EncodeToString(s[:]) || e.hdr.PAXRecords[meta.PAXUnchanged] != "" {
			t.Fatalf("%s: %+v, want its content %q read", name, e.hdr, want)
		}
	}
	if _, ok := entries2["data/e.log"]; ok {
		t.Fatal("the deleted file is in the second stream")
	}
}
