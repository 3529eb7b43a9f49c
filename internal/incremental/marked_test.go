//go:build linux

package incremental

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/target"
	wtree "github.com/docker-backup/docker-backup/internal/worker/tree"
	"golang.org/x/sys/unix"
)

func openRepo(t *testing.T) *repo.Repo {
	t.Helper()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), tg, repo.InitOptions{}, repo.Access{Signer: signer, Trust: artifact.NewKeyring(signer), Host: "test", PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// backup is what the caller of an incremental backup does: the parent's metadata to the
// worker's walk, its stream into the writer.
func backup(t *testing.T, r *repo.Repo, dir string, parent *repo.Snapshot) (*repo.Snapshot, *wtree.Incremental) {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cur *meta.Cursor
	var finder *tree.Finder
	if parent != nil {
		rd, err := r.NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var md bytes.Buffer
		if err := ParentMetadata(ctx, rd, parent, &md); err != nil {
			t.Fatal(err)
		}
		cur = meta.NewCursor(meta.NewDecoder(&md))
		finder = rd.Finder(parent.Tree)
	}
	pr, pw := io.Pipe()
	done := make(chan *wtree.Incremental, 1)
	roots := []wtree.Root{{Dir: filepath.Dir(dir), Rel: filepath.Base(dir), Name: "data"}}
	go func() {
		st, err := wtree.ArchiveIncremental(ctx, roots, nil, nil, cur, pw)
		pw.CloseWithError(err)
		done <- st
	}()
	got, err := IngestMarked(ctx, w, pr, finder)
	if err != nil {
		t.Fatal(err)
	}
	st := <-done
	// What it counted is what a full backup of the same tree counts (verify compares them).
	want, err := wtree.ArchiveRoots(ctx, roots, nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Files != want.Files || got.Bytes != want.Bytes || got.Tree != want.Tree {
		t.Errorf("contents counted by the incremental backup %+v, a full backup's %+v", got, want)
	}
	info := repo.Snapshot{Project: "shop", Service: "files", Strategy: "volume", Paths: []string{"/data"}}
	if parent != nil {
		info.Parent = parent.ID
	}
	s, err := w.Commit(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// listing is every regular file below dir (as "data/...") with its SHA-256.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, "data/"+rel+" "+hex.EncodeToString(s[:]))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// exported is the same listing of a snapshot's export (hard links count as their target).
func exported(t *testing.T, r *repo.Repo, s *repo.Snapshot) string {
	t.Helper()
	rd, err := r.NewReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rd.Export(context.Background(), s, &buf); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	var lines []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Trim(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			s := sha256.Sum256(b)
			sums[name] = hex.EncodeToString(s[:])
			lines = append(lines, name+" "+sums[name])
		case tar.TypeLink:
			lines = append(lines, name+" "+sums[strings.Trim(h.Linkname, "/")])
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestIncrementalRoundTrips(t *testing.T) {
	r := openRepo(t)
	dir := filepath.Join(t.TempDir(), "vol")
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(rel string, n int) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		write(fmt.Sprintf("d%d/f%d.bin", i%5, i), 1000+i*300)
	}
	write("big.bin", 3<<20)
	if err := os.Link(filepath.Join(dir, "d1/f1.bin"), filepath.Join(dir, "d0/hard")); err != nil {
		t.Fatal(err)
	}
	s1, st := backup(t, r, dir, nil)
	if st.Read != 41 || s1.Totals.ReusedFiles != 0 {
		t.Fatalf("first: %+v, totals %+v", st, s1.Totals)
	}
	if got, want := exported(t, r, s1), listing(t, dir); got != want {
		t.Fatalf("first snapshot:\n%s\nwant\n%s", got, want)
	}

	// Changes: appended to, a new file, one deleted, one renamed, one truncated.
	f, err := os.OpenFile(filepath.Join(dir, "big.bin"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("x"), 100_000))
	f.Close()
	write("d4/new.bin", 10_000)
	for _, err := range []error{os.Remove(filepath.Join(dir, "d2/f2.bin")), os.Rename(filepath.Join(dir, "d3/f3.bin"), filepath.Join(dir, "d3/moved.bin")),
		os.Truncate(filepath.Join(dir, "d4/f4.bin"), 10)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s2, st := backup(t, r, dir, s1)
	// Read: big.bin, new.bin, f4 (truncated), moved.bin (a new name, the parent has none).
	if st.Read != 4 || st.Unchanged != 37 || s2.Totals.ReusedFiles != 37 {
		t.Fatalf("second: %+v, totals %+v: want 4 files read, 37 reused", st, s2.Totals)
	}
	if got, want := exported(t, r, s2), listing(t, dir); got != want {
		t.Fatalf("second snapshot:\n%s\nwant\n%s", got, want)
	}
	// The chunker's seed is the repository's own (random): big.bin's changed last chunk is
	// anything up to the whole file; the 37 unchanged files (about 280 kB) are never stored again.
	if s2.Totals.NewRaw > int64(3<<20+100_000+10_000+50_000) || s2.Totals.NewBlobs > 12 {
		t.Fatalf("the second snapshot stored %d new bytes in %d blobs, want only the changes (big.bin's changed chunks, the new files, trees)", s2.Totals.NewRaw, s2.Totals.NewBlobs)
	}
	// Nothing changed: nothing read.
	s3, st := backup(t, r, dir, s2)
	if st.Read != 0 || s3.Totals.ReusedFiles != 41 || s3.Tree != s2.Tree {
		t.Fatalf("third: %+v, totals %+v, tree %s vs %s: want nothing read, the same tree", st, s3.Totals, s3.Tree, s2.Tree)
	}
	res, err := r.Check(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 || res.Snapshots != 3 {
		t.Fatalf("check: %+v", res)
	}
}

func TestIngestMarkedRefusesUnbackedMarkers(t *testing.T) {
	r := openRepo(t)
	ctx := context.Background()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "data/x", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{meta.PAXUnchanged: "5", meta.PAXInode: "7"}})
	tw.Close()
	s1, _ := backup(t, r, t.TempDir(), nil) // a parent without data/x
	rd, err := r.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*tree.Finder{"no parent": nil, "not in the parent": rd.Finder(s1.Tree)} {
		w, err := r.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = IngestMarked(ctx, w, bytes.NewReader(buf.Bytes()), f)
		w.Abort(ctx)
		if err == nil || !strings.Contains(err.Error(), "marked unchanged") {
			t.Fatalf("%s: %v, want the marked file refused", name, err)
		}
	}
}

func TestMkdev(t *testing.T) {
	for _, d := range [][2]uint64{{0, 0}, {8, 1}, {259, 65536}, {4095, 255}, {4096, 256}} {
		if got, want := tree.Mkdev(d[0], d[1]), unix.Mkdev(uint32(d[0]), uint32(d[1])); got != want {
			t.Errorf("tree.Mkdev(%d, %d) = %#x, want %#x", d[0], d[1], got, want)
		}
	}
}
