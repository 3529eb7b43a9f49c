package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"github.com/docker-backup/docker-backup/internal/worker/extract"
	"golang.org/x/sys/unix"
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
	_, err := Archive(context.Background(), paths, []string{src}, nil, &buf)
	must(err)

	must(os.RemoveAll(filepath.Join(src, "a")))
	must(os.RemoveAll(filepath.Join(src, "b")))
	if err := extract.Tar(context.Background(), bytes.NewReader(buf.Bytes()), paths, []string{src}, false); err != nil {
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

// capSetuid is a security.capability value: cap_setuid (bit 7), permitted and effective
// (VFS_CAP_REVISION_2) — set-user-ID root by another name.
var capSetuid = []byte{1, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// TestUntrustedRestoreDropsCapabilities: a file's capabilities come back from a trusted backup
// only; from one that is not (unsigned, another key), the file is restored without them, in
// place and staged, and the worker says so in a warning.
func TestUntrustedRestoreDropsCapabilities(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "ping"), []byte("#!/bin/true\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("x"), 2<<20), 0o755)) // not a small file
	for _, name := range []string{"ping", "big"} {
		must(unix.Setxattr(filepath.Join(src, name), tarpolicy.CapabilityXattr, capSetuid, 0))
	}
	var archive bytes.Buffer
	_, err := Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	capOf := func(name string) string {
		c, err := xattr(func(buf []byte) (int, error) {
			return unix.Lgetxattr(filepath.Join(src, name), tarpolicy.CapabilityXattr, buf)
		})
		if err != nil {
			return ""
		}
		return string(c)
	}
	reset := func() {
		t.Helper()
		for _, name := range []string{"ping", "big"} {
			must(os.Remove(filepath.Join(src, name)))
		}
	}
	check := func(how string, trusted bool) {
		t.Helper()
		for _, name := range []string{"ping", "big"} {
			got, want := capOf(name), ""
			if trusted {
				want = string(capSetuid)
			}
			if got != want {
				t.Errorf("%s, trusted %v: %s has the capability %x, want %x", how, trusted, name, got, want)
			}
			if fi, err := os.Stat(filepath.Join(src, name)); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s, trusted %v: %s not restored: %v", how, trusted, name, err)
			}
		}
	}
	for _, trusted := range []bool{false, true} {
		reset()
		must(extract.Tar(context.Background(), bytes.NewReader(archive.Bytes()), []string{src}, []string{src}, trusted))
		check("in place", trusted)

		reset()
		req := Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Trusted: trusted,
			Staged: true, Size: int64(archive.Len())}
		var reports bytes.Buffer
		if code := Serve(context.Background(), stagedInput(t, req, archive.Bytes(), false, VerdictCommit), io.Discard, &reports); code != 0 {
			t.Fatalf("staged restore: exit code %d:\n%s", code, reports.String())
		}
		check("staged", trusted)
		warned := false
		for _, l := range strings.Split(strings.TrimSpace(reports.String()), "\n") {
			var r Report
			must(json.Unmarshal([]byte(l), &r))
			warned = warned || strings.Contains(r.Warn, "security.capability of")
		}
		if warned == trusted {
			t.Errorf("staged, trusted %v: warned about the dropped capabilities: %v; reports:\n%s", trusted, warned, reports.String())
		}
	}
}

// TestExtractNodesInTheDirectoryDescriptor: the directory a restore is writing into is
// swapped for a link to elsewhere between two entries (a running service can do that during
// a staged restore): the named pipe and the link's times that follow are made in the
// directory the restore holds open, nothing is created through the link.
func TestExtractNodesInTheDirectoryDescriptor(t *testing.T) {
	src, outside, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "d/a"), bytes.Repeat([]byte("a"), 512), 0o644))
	must(unix.Mkfifo(filepath.Join(src, "d/p"), 0o600))
	must(os.Symlink("a", filepath.Join(src, "d/s")))
	var archive bytes.Buffer
	_, err := Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	// Where the first file's content ends: after it, the restore has entered d.
	cut := bytes.Index(archive.Bytes(), bytes.Repeat([]byte("a"), 512)) + 512
	if cut < 512 {
		t.Fatal("the file's content is not in the archive")
	}
	must(os.RemoveAll(filepath.Join(src, "d")))

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := extract.Tar(context.Background(), pr, []string{src}, []string{src}, true)
		pr.CloseWithError(fmt.Errorf("the restore ended: %v", err))
		done <- err
	}()
	if _, err := pw.Write(archive.Bytes()[:cut]); err != nil {
		t.Fatal(err)
	}
	// The restore read the file: d is its current directory. Swapped for a link to outside.
	must(os.Rename(filepath.Join(src, "d"), filepath.Join(src, "d.held")))
	must(os.Symlink(outside, filepath.Join(src, "d")))
	if _, err := pw.Write(archive.Bytes()[cut:]); err != nil {
		t.Fatalf("the restore stopped reading: %v (its error: %v)", err, <-done)
	}
	pw.Close()
	// The restore may refuse the swapped directory at the end (its times are set through the
	// volume's root, which follows no link out); it must not fail before.
	if err := <-done; err != nil && !strings.Contains(err.Error(), "setting the times of "+filepath.Join(src, "d")+":") {
		t.Errorf("the restore failed: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the restore created %v through the link", entries)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(src, "d.held/p"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("the named pipe is not in the directory the restore held: %v", err)
	}
}

// TestArchiveOpensNoNodeSwappedIn: a regular file examined by the walk is replaced by a device
// node or a named pipe before it is read (a running service can do that): the backup refuses
// the entry without ever opening the node — no driver's open runs, no writer of the pipe is
// released (inotify sees no open of it).
func TestArchiveOpensNoNodeSwappedIn(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	for _, kind := range []string{"a device node", "a named pipe"} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(src, "f")
			must(os.WriteFile(p, []byte("data"), 0o644))
			dfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			must(err)
			defer unix.Close(dfd)
			fi, err := lstatAt(dfd, "f")
			must(err)
			must(os.Remove(p))
			if kind == "a device node" {
				must(unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))) // /dev/null's numbers
			} else {
				must(unix.Mkfifo(p, 0o666))
			}
			defer os.Remove(p)
			in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
			must(err)
			defer unix.Close(in)
			_, err = unix.InotifyAddWatch(in, p, unix.IN_OPEN)
			must(err)

			a := &archiver{ctx: context.Background(), tw: tar.NewWriter(io.Discard), links: map[fileID]string{}, buf: make([]byte, 4096), hash: xxhash.New()}
			err = a.add(dfd, "f", p, "vol/f", fi, -1)
			if err == nil || !strings.Contains(err.Error(), "changed while it was archived") {
				t.Errorf("archiving the swapped entry: %v, want it refused as changed", err)
			}
			buf := make([]byte, 4096)
			if n, err := unix.Read(in, buf); n > 0 || err != unix.EAGAIN {
				t.Errorf("the backup opened %s swapped in (inotify: %d bytes of events, %v)", kind, n, err)
			}
		})
	}
}

// TestArchiveStaysOnItsMounts: below a backed-up path, a mount that is not one of the
// service's (a tmpfs; a bind mount of the same file system, told apart by its mount ID) is
// not archived — neither its files nor its mount point — while a mount of the service
// inside the path is, as the Engine's archive API does.
func TestArchiveStaysOnItsMounts(t *testing.T) {
	src, outside, must := volumeDirs(t)
	for _, d := range []string{"tmpfs", "bound", "service"} {
		must(os.MkdirAll(filepath.Join(src, d), 0o755))
	}
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "own.txt"), []byte("the path's own\n"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("not the service's\n"), 0o600))
	mount := func(source, target, fstype string, flags uintptr) {
		t.Helper()
		if err := unix.Mount(source, target, fstype, flags, ""); err != nil {
			t.Fatalf("mounting %s on %s (the test needs root with CAP_SYS_ADMIN): %v", source, target, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	}
	mount("tmpfs", filepath.Join(src, "tmpfs"), "tmpfs", 0)
	must(os.WriteFile(filepath.Join(src, "tmpfs/secret"), []byte("on the tmpfs\n"), 0o600))
	mount(outside, filepath.Join(src, "bound"), "", unix.MS_BIND)
	mount("tmpfs", filepath.Join(src, "service"), "tmpfs", 0)
	must(os.WriteFile(filepath.Join(src, "service/data"), []byte("the service's\n"), 0o600))

	var buf bytes.Buffer
	_, err := Archive(context.Background(), []string{src}, []string{src, filepath.Join(src, "service")}, nil, &buf)
	must(err)
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		names = append(names, strings.TrimPrefix("/"+hdr.Name, src))
	}
	got := strings.Join(names, " ")
	if want := "/ /own.txt /service/ /service/data"; got != want {
		t.Errorf("archived %s, want %s", got, want)
	}
}
