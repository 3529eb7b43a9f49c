package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
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

// xattr reads an extended attribute through get, growing its buffer as needed.
func xattr(get func(buf []byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 128)
	for {
		n, err := get(buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 64<<10 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
