package tree

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"github.com/docker-backup/docker-backup/internal/worker/extract"
	"golang.org/x/sys/unix"
)

// listTree describes every entry below dir: type, mode, owner, size, link target, content.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", strings.TrimPrefix(p, dir), fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" size=%d sum=%x nlink=%d", fi.Size(), bytesSum(b), st.Nlink)
			if c, err := xattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, tarpolicy.CapabilityXattr, buf) }); err == nil {
				line += fmt.Sprintf(" capability=%x", c)
			}
			if !fi.IsDir() {
				line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func bytesSum(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// volumeDirs returns a volume's directory (not made yet) and one beside it, in a temporary
// directory, and a helper that fails the test on an error. The tests that use it set owners.
func volumeDirs(t *testing.T) (src, outside string, must func(error)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test sets owners: run it as root (the project's machines do)")
	}
	base := t.TempDir()
	return filepath.Join(base, "vol"), filepath.Join(base, "outside"), func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveExtractRoundTrip archives a real tree, damages it and extracts the archive back:
// the tree is as it was, the sparse file sparse again, nothing written through a link planted
// where a directory was.
func TestArchiveExtractRoundTrip(t *testing.T) {
	src, outside, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755))
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "dir/sub/n.txt"), bytes.Repeat([]byte("1234567\n"), 50000), 0o644))
	must(os.Chmod(filepath.Join(src, "dir/sub/n.txt"), 0o4750))
	must(os.Chown(filepath.Join(src, "dir/sub/n.txt"), 1234, 5678))
	must(os.Symlink("hello.txt", filepath.Join(src, "link")))
	must(os.Lchown(filepath.Join(src, "link"), 4321, 8765))
	must(os.Link(filepath.Join(src, "hello.txt"), filepath.Join(src, "hard.txt")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	f, err := os.Create(filepath.Join(src, "sparse.img"))
	must(err)
	must(f.Truncate(64 << 20))
	_, err = f.WriteAt([]byte("middle"), 40<<20)
	must(err)
	must(f.Close())
	// Many small files (written by several writers at once), some empty, some set-user-ID,
	// one hard-linked from another directory.
	must(os.MkdirAll(filepath.Join(src, "many/sub"), 0o750))
	for i := range 300 {
		name := filepath.Join(src, "many", fmt.Sprintf("f%03d", i))
		must(os.WriteFile(name, bytes.Repeat([]byte{byte(i)}, (i%5)*37*i), 0o640))
		must(os.Chown(name, 1000+i%7, 2000+i%3))
		if i%50 == 1 {
			must(os.Chmod(name, 0o4755))
		}
	}
	must(os.Link(filepath.Join(src, "many/f007"), filepath.Join(src, "many/sub/hard")))
	must(os.Chmod(filepath.Join(src, "dir"), 0o1777))
	must(os.Chown(src, 999, 999))
	// File capabilities (cap_net_bind_service, permitted and effective: VFS_CAP_REVISION_2).
	must(os.WriteFile(filepath.Join(src, "capped"), []byte("#!/bin/true\n"), 0o755))
	capability := []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Setxattr(filepath.Join(src, "capped"), tarpolicy.CapabilityXattr, capability, 0))
	before := listTree(t, src)
	if !strings.Contains(before, "capability=01000002") {
		t.Fatalf("the capability was not set:\n%s", before)
	}

	var buf bytes.Buffer
	contents, err := Archive(context.Background(), []string{src}, []string{src}, nil, &buf)
	must(err)
	// The digest made while archiving is the one the volume strategy makes of the stream.
	count := (&volume.Strategy{}).NewCount()
	_, err = count.Write(buf.Bytes())
	must(err)
	parsed, err := count.Contents()
	must(err)
	if contents.Files != parsed.Files || contents.Bytes != parsed.Bytes || contents.Tree != parsed.Tree || contents.Files == 0 {
		t.Errorf("Archive's contents %+v, the stream parsed: %+v", *contents, *parsed)
	}

	// Damage: contents, a removed tree, a directory replaced by a link to outside.
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("changed"), 0o600))
	must(os.RemoveAll(filepath.Join(src, "dir")))
	must(os.Symlink(outside, filepath.Join(src, "dir")))
	must(os.Truncate(filepath.Join(src, "sparse.img"), 10))
	must(os.Chown(src, 0, 0))
	must(unix.Removexattr(filepath.Join(src, "capped"), tarpolicy.CapabilityXattr))
	must(os.RemoveAll(filepath.Join(src, "many/sub")))
	must(os.WriteFile(filepath.Join(src, "many/f003"), []byte("changed"), 0o600))
	must(os.Symlink(outside, filepath.Join(src, "many/f004")+".tmp"))
	must(os.Remove(filepath.Join(src, "many/f004")))
	must(os.Rename(filepath.Join(src, "many/f004")+".tmp", filepath.Join(src, "many/f004")))

	must(extract.Tar(context.Background(), &buf, []string{src}, []string{src}, true))
	if after := listTree(t, src); after != before {
		t.Errorf("tree after extract:\n%s\nwant:\n%s", after, before)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the extract wrote through the planted link: %v", entries)
	}
	var st syscall.Stat_t
	must(syscall.Stat(filepath.Join(src, "sparse.img"), &st))
	if st.Blocks*512 > 1<<20 {
		t.Errorf("the sparse file takes %d bytes after the extract, want it sparse", st.Blocks*512)
	}
}

// The walk never follows a link below an archived path: an entry swapped for a link to
// elsewhere after it was examined is refused, not followed; a file swapped for another is
// told apart by its identity.
func TestArchiveFollowsNoLink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	src := filepath.Join(dir, "src")
	for _, d := range []string{outside, filepath.Join(src, "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Kept, so that no file made later reuses its inode number.
	if err := os.Link(filepath.Join(src, "f"), filepath.Join(dir, "f.keep")); err != nil {
		t.Fatal(err)
	}
	dfd, err := openDir(unix.AT_FDCWD, src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	dirInfo, err := lstatAt(dfd, "d")
	if err != nil || !dirInfo.IsDir() {
		t.Fatalf("lstatAt(d) = %v, %v", dirInfo, err)
	}
	fileInfo, err := lstatAt(dfd, "f")
	if err != nil || !fileInfo.Mode().IsRegular() {
		t.Fatalf("lstatAt(f) = %v, %v", fileInfo, err)
	}
	// The swaps a running service could make between the examination and the open.
	if err := os.Remove(filepath.Join(src, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	a := &archiver{ctx: context.Background(), tw: tar.NewWriter(&buf), links: map[fileID]string{}, buf: make([]byte, 1<<10), hash: xxhash.New()}
	if err := a.add(dfd, "f", filepath.Join(src, "f"), "src/f", fileInfo, -1); err == nil {
		t.Error("a file swapped for a link to elsewhere was archived")
	}
	if fd, err := openDir(dfd, "d", false); err == nil {
		unix.Close(fd)
		t.Error("a directory swapped for a link to elsewhere was opened")
	}
	if strings.Contains(buf.String(), "secret") {
		t.Error("the archive holds what is outside")
	}

	// A file replaced by another one (a rename over it): the identity differs.
	if err := os.Remove(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	a = &archiver{ctx: context.Background(), tw: tar.NewWriter(io.Discard), links: map[fileID]string{}, buf: make([]byte, 1<<10), hash: xxhash.New()}
	if err := a.add(dfd, "f", filepath.Join(src, "f"), "src/f", fileInfo, -1); !errors.Is(err, errChanged) {
		t.Errorf("a file replaced after its examination: %v, want errChanged", err)
	}

	// The whole walk: the link is archived as a link, what it points to is not read.
	buf.Reset()
	if _, err := Archive(context.Background(), []string{src}, []string{src}, nil, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(hdr.Name, "/d") && hdr.Typeflag != tar.TypeSymlink {
			t.Errorf("%s: type %c, want a symbolic link", hdr.Name, hdr.Typeflag)
		}
		if strings.Contains(hdr.Name, "secret") {
			t.Errorf("the archive holds %s", hdr.Name)
		}
	}
}
