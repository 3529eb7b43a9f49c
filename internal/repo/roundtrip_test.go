package repo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"golang.org/x/sys/unix"
)

// TestRoundTrip backs up a directory five times with changes between (files added, removed,
// renamed, truncated, hard links, symlinks, empty files, a large file appended to, a fifo);
// every snapshot restores to the tree it was made of, in plain and encrypted repositories.
func TestRoundTrip(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			roundTrip(t, enc)
		})
	}
}

func roundTrip(t *testing.T, enc bool) {
	ctx := context.Background()
	e := newEnv(t, enc)
	src := filepath.Join(e.dir, "src")
	big := randomBytes(5<<20, 1)
	write(t, filepath.Join(src, "big.bin"), big)
	write(t, filepath.Join(src, "a/b/c/text.txt"), bytes.Repeat([]byte("compressible text\n"), 10000))
	write(t, filepath.Join(src, "a/empty"), nil)
	write(t, filepath.Join(src, "a/small"), []byte("hi"))
	write(t, filepath.Join(src, "z/old"), randomBytes(300<<10, 2))
	must(t, os.Symlink("../a/small", filepath.Join(src, "z/link")))
	must(t, os.Link(filepath.Join(src, "z/old"), filepath.Join(src, "a/hard")))
	must(t, syscall.Mkfifo(filepath.Join(src, "a/fifo"), 0o600))
	must(t, os.Chmod(filepath.Join(src, "a/small"), 0o4750))
	must(t, os.Chtimes(filepath.Join(src, "a/b"), time.Time{}, time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)))

	changes := []func(){
		func() {}, // the first
		func() {}, // unchanged
		func() { // append to the large file, add and remove, rename
			f, err := os.OpenFile(filepath.Join(src, "big.bin"), os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			_, err = f.Write(randomBytes(1<<20, 3))
			must(t, err)
			must(t, f.Close())
			write(t, filepath.Join(src, "new/deep/file"), randomBytes(10<<10, 4))
			must(t, os.Remove(filepath.Join(src, "a/empty")))
			must(t, os.Rename(filepath.Join(src, "a/b/c/text.txt"), filepath.Join(src, "a/renamed.txt")))
		},
		func() { // truncate, a second hard link, remove a directory
			must(t, os.Truncate(filepath.Join(src, "big.bin"), 1<<20))
			must(t, os.Link(filepath.Join(src, "z/old"), filepath.Join(src, "new/hard2")))
			must(t, os.RemoveAll(filepath.Join(src, "a/b")))
		},
		func() { // rewrite a file in place with the same size; extended attributes
			write(t, filepath.Join(src, "a/small"), []byte("ho"))
			must(t, unix.Setxattr(filepath.Join(src, "a/renamed.txt"), "user.origin", []byte("docker-backup\x00binary"), 0))
			must(t, unix.Setxattr(filepath.Join(src, "new"), "user.dir", []byte("d"), 0))
		},
	}
	r := e.open(nil)
	var snaps []*Snapshot
	var want []string
	var parent *Snapshot
	for i, change := range changes {
		change()
		want = append(want, dirHash(t, src))
		s, err := backupDir(ctx, r, src, parent)
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		snaps = append(snaps, s)
		parent = s
	}
	for i := 2; i < len(want); i++ {
		if want[i] == want[i-1] {
			t.Fatalf("change %d did not change the source's digest: the test proves nothing", i)
		}
	}
	// Opened anew, as a restoring host would: with the identity, not the key file.
	reader := e.open(func(a *Access) { a.MasterKey = nil; a.Identities = e.ids; a.Signer = nil })
	for i, s := range snaps {
		tr, err := export(ctx, reader, s)
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		if got := tarHash(t, tr); got != want[i] {
			t.Errorf("snapshot %d restores to %s, the source was %s", i, got, want[i])
		}
	}
	if snaps[1].Totals.NewBlobs != 0 || snaps[1].Totals.ReusedFiles != snaps[1].Totals.Files {
		t.Errorf("the unchanged second snapshot stored %d blobs and reused %d of %d files", snaps[1].Totals.NewBlobs, snaps[1].Totals.ReusedFiles, snaps[1].Totals.Files)
	}
	res, err := r.Check(ctx, 1)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if res.Snapshots != len(snaps) || res.ReadPacks != res.Packs || len(res.Unindexed) != 0 {
		t.Errorf("check: %+v", res)
	}
	if enc {
		assertEncrypted(t, e, [][]byte{[]byte("compressible text"), big[:64]})
	}
}

// assertEncrypted: no plaintext on the target.
func assertEncrypted(t *testing.T, e *env, plain [][]byte) {
	t.Helper()
	filepath.Walk(filepath.Join(e.dir, "repo"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		must(t, err)
		for _, s := range plain {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds plaintext %q", p, s[:10])
			}
		}
		if strings.Contains(p, "snapshots") && bytes.Contains(b, []byte("shop")) {
			t.Errorf("snapshot %s is readable", p)
		}
		return nil
	})
}

// TestDedup: a second snapshot of unchanged data uploads nothing to data/; renamed copies
// of files store nothing new either.
func TestDedup(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	src := filepath.Join(e.dir, "src")
	for i := range 20 {
		write(t, filepath.Join(src, "d", string(rune('a'+i))), randomBytes(200<<10, uint64(i)))
	}
	write(t, filepath.Join(src, "large"), randomBytes(12<<20, 99))
	r := e.open(nil)
	s1, err := backupDir(ctx, r, src, nil)
	must(t, err)
	before := packCount(t, e.target)
	// Without a parent: every file read again, every chunk known.
	s2, err := backupDir(ctx, r, src, nil)
	must(t, err)
	if after := packCount(t, e.target); after != before || s2.Totals.NewBlobs != 0 {
		t.Fatalf("an unchanged snapshot uploaded %d packs (%d blobs)", after-before, s2.Totals.NewBlobs)
	}
	if s2.Tree != s1.Tree {
		t.Fatalf("the same tree has two root IDs")
	}
	must(t, os.Rename(filepath.Join(src, "large"), filepath.Join(src, "d/moved")))
	s3, err := backupDir(ctx, r, src, s2)
	must(t, err)
	if s3.Totals.NewRaw > 64<<10 {
		t.Fatalf("a renamed file stored %d new bytes (only trees should be new)", s3.Totals.NewRaw)
	}
}

func packCount(t *testing.T, tg target.Target) int {
	t.Helper()
	objs, err := target.Collect(tg.List(context.Background(), "data/"))
	must(t, err)
	return len(objs)
}
