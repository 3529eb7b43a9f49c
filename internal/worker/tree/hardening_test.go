package tree

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

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
