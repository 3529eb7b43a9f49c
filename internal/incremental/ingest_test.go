package incremental_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/target"
)

type entry struct {
	hdr  tar.Header
	body []byte
}

// sample is a volume archive as the volume strategy writes it: two paths, every kind of entry.
func sample(seed byte) []entry {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	big := bytes.Repeat([]byte{seed, 1, 2, 3, 4, 5, 6, 7}, 300_000) // several chunks
	return []entry{
		{hdr: tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 999, Gid: 999, ModTime: at}},
		{hdr: tar.Header{Name: "data/a.txt", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, Uname: "app", Gname: "app", ModTime: at,
			PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hello"}}, body: []byte("alpha " + string(seed))},
		{hdr: tar.Header{Name: "data/big.bin", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: at}, body: big},
		{hdr: tar.Header{Name: "data/empty", Typeflag: tar.TypeReg, Mode: 0o4755, ModTime: at}},
		{hdr: tar.Header{Name: "data/link", Typeflag: tar.TypeSymlink, Linkname: "a.txt", Mode: 0o777, ModTime: at}},
		{hdr: tar.Header{Name: "data/sub/", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: at}},
		{hdr: tar.Header{Name: "data/sub/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: at}},
		{hdr: tar.Header{Name: "data/sub/hard", Typeflag: tar.TypeLink, Linkname: "data/a.txt", ModTime: at}},
		{hdr: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: at}},
		{hdr: tar.Header{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: at}, body: []byte("x=1\n")},
	}
}

func archive(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Size, h.Format = int64(len(e.body)), tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listing is one line per entry: name, type, mode, owner, mtime, link, xattrs, content hash.
func listing(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		var x []string
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				x = append(x, k+"="+v)
			}
		}
		slices.Sort(x)
		out = append(out, fmt.Sprintf("%s %c %o %d:%d %s:%s %s %q %v %s", strings.TrimSuffix(h.Name, "/"), h.Typeflag, h.Mode, h.Uid, h.Gid,
			h.Uname, h.Gname, h.ModTime.UTC().Format(time.RFC3339Nano), h.Linkname, x, hex.EncodeToString(sum[:8])))
	}
}

func newRepo(t *testing.T) (*repo.Repo, target.Target) {
	t.Helper()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := snapshots.OpenOrInit(context.Background(), tg, nil, snapshots.Keys{},
		repo.Access{Signer: signer, Trust: artifact.NewKeyring(signer), Host: "test", PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return r, tg
}

func snapshot(t *testing.T, r *repo.Repo, in []byte, parent *repo.Snapshot) *repo.Snapshot {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := incremental.Ingest(ctx, w, bytes.NewReader(in), nil); err != nil {
		w.Abort(ctx)
		t.Fatal(err)
	}
	info := repo.Snapshot{Project: "shop", Service: "files", Strategy: "volume", Source: map[string]string{"paths": "/data,/etc"}}
	if parent != nil {
		info.Parent = parent.ID
	}
	s, err := w.Commit(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stream(t *testing.T, r *repo.Repo, s *repo.Snapshot, paths []string) []byte {
	t.Helper()
	ctx := context.Background()
	rd, err := r.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := snapshots.Stream(ctx, rd, s, paths, &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestIngestRoundTrip: a volume archive ingested and streamed back lists the same entries
// (names, types, modes, owners, times, links, xattrs, content); a second snapshot of a
// slightly changed archive stores little, and both stream back exactly.
func TestIngestRoundTrip(t *testing.T) {
	r, tg := newRepo(t)
	first := archive(t, sample('a'))
	s1 := snapshot(t, r, first, nil)
	if got, want := listing(t, stream(t, r, s1, nil)), listing(t, first); !slices.Equal(got, want) {
		t.Fatalf("snapshot 1 streams back\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	changed := sample('a')
	changed[1].body = []byte("alpha changed")
	changed = slices.Delete(changed, 9, 10) // etc/conf removed
	second := archive(t, changed)
	s2 := snapshot(t, r, second, s1)
	if got, want := listing(t, stream(t, r, s2, nil)), listing(t, second); !slices.Equal(got, want) {
		t.Fatalf("snapshot 2 streams back\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s2.Totals.NewRaw > 64<<10 {
		t.Fatalf("snapshot 2 stored %d new bytes for a few changed bytes (the big file is unchanged)", s2.Totals.NewRaw)
	}
	if got, want := listing(t, stream(t, r, s1, nil)), listing(t, first); !slices.Equal(got, want) {
		t.Fatalf("snapshot 1 after snapshot 2 streams back\n%s", strings.Join(got, "\n"))
	}
	part := listing(t, stream(t, r, s1, []string{"data/sub"}))
	// The hard link's target is not restored: the link carries the content.
	if len(part) != 4 || !strings.HasPrefix(part[0], "data ") || !strings.HasPrefix(part[1], "data/sub ") ||
		!strings.HasPrefix(part[3], "data/sub/hard 0 640 1000:1000") || !strings.HasSuffix(part[3], "b28203b789707eae") {
		t.Fatalf("paths data/sub streams\n%s", strings.Join(part, "\n"))
	}
	if _, err := tg.Get(context.Background(), snapshots.Key(s2.ID)); err != nil {
		t.Fatalf("the snapshot is not at its key: %v", err)
	}
}

// TestIngestStream: a dump is one file and streams back byte for byte.
func TestIngestStream(t *testing.T) {
	r, _ := newRepo(t)
	ctx := context.Background()
	dump := bytes.Repeat([]byte("COPY public.t (a) FROM stdin;\n1\n\\.\n"), 100_000)
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := incremental.IngestStream(ctx, w, snapshots.DumpFile("sql"), bytes.NewReader(dump), time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := w.Commit(ctx, repo.Snapshot{Project: "shop", Service: "db", Strategy: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	if got := stream(t, r, s, nil); !bytes.Equal(got, dump) {
		t.Fatalf("the dump streams back as %d bytes, not the %d ingested", len(got), len(dump))
	}
}

// TestWriterFinder: a writer finds the parent snapshot's entries through its own index (what
// an ingestion of unchanged files reuses).
func TestWriterFinder(t *testing.T) {
	r, _ := newRepo(t)
	ctx := context.Background()
	s1 := snapshot(t, r, archive(t, sample('a')), nil)
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort(ctx)
	f := w.Finder(s1.Tree)
	for _, p := range []string{"data/a.txt", "data/sub/hard", "etc/conf"} {
		n, err := f.Find(ctx, p)
		if err != nil || n == nil {
			t.Fatalf("Find(%q) = %v, %v", p, n, err)
		}
	}
	if n, err := f.Find(ctx, "data/big.bin"); err != nil || n == nil || len(n.Content) == 0 || n.Size != 2_400_000 {
		t.Fatalf("data/big.bin in the parent: %+v, %v", n, err)
	}
	if n, err := f.Find(ctx, "data/missing"); err != nil || n != nil {
		t.Fatalf("a missing entry: %+v, %v", n, err)
	}
}
