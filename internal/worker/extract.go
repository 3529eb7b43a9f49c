package worker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/strategy"
	"golang.org/x/sys/unix"
)

// Extract writes the volume archive read from r into the mounted paths, as the Engine's
// archive API would: every entry is first checked by the volume strategy's tar policy (so
// nothing lands outside the backed-up paths and nothing is written through a link, whatever
// the archive says); an existing entry is replaced unless both are directories (a directory
// is merged); owners, modes (set-user-ID and sticky bits after the owner), the
// security.capability attribute and times are applied; directory times last. Runs of zeros
// in a file are left as holes, so sparse files stay sparse. Entries already on disk that the
// archive does not hold are left alone.
//
// mounts are the directories (or files) mounted into the worker; each path is written
// through an os.Root opened at the mount that holds it, so that even a link swapped in
// meanwhile cannot lead a write out of that volume.
func Extract(ctx context.Context, r io.Reader, paths, mounts []string, trusted bool) error {
	x := &extractor{pol: strategy.NewTarPolicy(paths, trusted), mounts: mounts, roots: map[string]*os.Root{},
		buf: make([]byte, 1<<20), zero: make([]byte, holeBlock)}
	defer x.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the backup archive: %w", err)
		}
		if _, err := x.pol.Check(hdr); err != nil {
			return err
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last (writing into a directory changes its time), innermost first.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := d.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("setting the times of %s: %w", d.abs, err)
		}
	}
	return nil
}

// holeBlock is the size of the zero runs left as holes.
const holeBlock = 64 << 10

type dirTime struct {
	root  *os.Root
	name  string
	abs   string
	mtime time.Time
}

type extractor struct {
	pol    *strategy.TarPolicy
	mounts []string
	roots  map[string]*os.Root // by the directory opened
	dirs   []dirTime
	buf    []byte
	zero   []byte
	// The root of the directory the last entry went into (see inDir).
	sub    *os.Root
	subOf  *os.Root
	subDir string
}

func (x *extractor) close() {
	if x.sub != nil {
		x.sub.Close()
	}
	for _, r := range x.roots {
		r.Close()
	}
}

// locate returns the root to write abs through and abs's name in it; mountPoint is set when
// abs is a mounted file itself (it cannot be replaced, only rewritten).
func (x *extractor) locate(abs string) (root *os.Root, name string, mountPoint bool, err error) {
	best := ""
	for _, m := range x.mounts {
		if strategy.Inside(abs, m) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return nil, "", false, fmt.Errorf("%s is not on a volume mounted into the worker", abs)
	}
	dir := best
	if fi, err := os.Stat(best); err == nil && !fi.IsDir() {
		dir, mountPoint = path.Dir(best), abs == best
	}
	root, ok := x.roots[dir]
	if !ok {
		if root, err = os.OpenRoot(dir); err != nil {
			return nil, "", false, fmt.Errorf("opening %s: %w", dir, err)
		}
		x.roots[dir] = root
	}
	name = strings.TrimPrefix(strings.TrimPrefix(abs, dir), "/")
	if name == "" {
		name = "."
	}
	return root, name, mountPoint, nil
}

// inDir returns the root of name's directory below mountRoot and name's last component: the
// entries of one directory mostly come together, so most operations then resolve one
// component instead of every directory on the way.
func (x *extractor) inDir(mountRoot *os.Root, name string) (*os.Root, string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return mountRoot, name, nil
	}
	dir = strings.TrimSuffix(dir, "/")
	if x.sub == nil || x.subOf != mountRoot || x.subDir != dir {
		if x.sub != nil {
			x.sub.Close()
			x.sub = nil
		}
		sub, err := mountRoot.OpenRoot(dir)
		if err != nil {
			return nil, "", err
		}
		x.sub, x.subOf, x.subDir = sub, mountRoot, dir
	}
	return x.sub, base, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	abs := "/" + strings.TrimSuffix(hdr.Name, "/")
	mountRoot, fullName, mountPoint, err := x.locate(abs)
	if err != nil {
		return err
	}
	root, name, err := x.inDir(mountRoot, fullName)
	if err != nil {
		return fmt.Errorf("restoring %s: opening its directory: %w", abs, err)
	}
	fail := func(what string, err error) error { return fmt.Errorf("restoring %s: %s: %w", abs, what, err) }
	mode := hdr.FileInfo().Mode()
	perm := mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)

	existing, statErr := root.Lstat(name)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return fail("looking at what is there", statErr)
	}
	// Replace what is there unless both are directories (merged) or it is a mounted file.
	if exists && !(existing.IsDir() && hdr.Typeflag == tar.TypeDir) && !mountPoint {
		if name == "." {
			return fail("replacing", fmt.Errorf("a volume's root is a directory, the archive has a %q entry", hdr.Typeflag))
		}
		if err := root.RemoveAll(name); err != nil {
			return fail("removing what was there", err)
		}
		exists = false
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := root.Mkdir(name, fs.ModePerm&perm); err != nil {
				return fail("creating the directory", err)
			}
		}
		x.dirs = append(x.dirs, dirTime{root: mountRoot, name: fullName, abs: abs, mtime: hdr.ModTime})
	case tar.TypeReg:
		flags := os.O_CREATE | os.O_EXCL | os.O_WRONLY
		if mountPoint {
			flags = os.O_WRONLY | os.O_TRUNC
		}
		f, err := root.OpenFile(name, flags, fs.ModePerm&perm)
		if err != nil {
			return fail("creating the file", err)
		}
		if err := x.writeSparse(f, r, hdr.Size); err != nil {
			f.Close()
			return fail("writing", err)
		}
		// Owner, attribute and mode through the open file (no path to resolve again).
		err = x.fileMeta(f, hdr, perm)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fail("writing", cerr)
		}
		if err != nil {
			return err
		}
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return fail("setting the times", err)
		}
		return nil
	case tar.TypeLink:
		oldAbs := "/" + strings.TrimSuffix(hdr.Linkname, "/")
		oldRoot, oldName, _, err := x.locate(oldAbs)
		if err != nil {
			return err
		}
		if oldRoot != mountRoot {
			return fail("linking", fmt.Errorf("the hard link's target %s is on another volume", oldAbs))
		}
		if err := mountRoot.Link(oldName, fullName); err != nil {
			return fail("linking to "+oldAbs, err)
		}
	case tar.TypeSymlink:
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return fail("creating the symbolic link", err)
		}
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		typ := map[byte]uint32{tar.TypeFifo: unix.S_IFIFO, tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK}[hdr.Typeflag]
		// The policy made every directory on the way an archive directory: no link in it.
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(abs, typ|uint32(perm&fs.ModePerm), int(dev)); err != nil {
			return fail("creating the node", err)
		}
	default:
		return fail("creating", fmt.Errorf("unsupported entry type %q", hdr.Typeflag))
	}

	if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return fail("setting the owner", err)
	}
	if v, ok := hdr.PAXRecords["SCHILY.xattr.security.capability"]; ok && hdr.Typeflag == tar.TypeReg {
		if err := unix.Lsetxattr(abs, "security.capability", []byte(v), 0); err != nil {
			return fail("setting security.capability", err)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail("setting the link's times", err)
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // the file it shares has its owner, mode and times
	}
	// After the owner: changing it clears the set-user-ID bits.
	if err := root.Chmod(name, perm); err != nil {
		return fail("setting the mode", err)
	}
	if hdr.Typeflag != tar.TypeDir {
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return fail("setting the times", err)
		}
	}
	return nil
}

// fileMeta sets a regular file's owner, security.capability and mode (after the owner:
// changing it clears the set-user-ID bits) through f.
func (x *extractor) fileMeta(f *os.File, hdr *tar.Header, perm fs.FileMode) error {
	abs := "/" + hdr.Name
	if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("restoring %s: setting the owner: %w", abs, err)
	}
	if v, ok := hdr.PAXRecords["SCHILY.xattr.security.capability"]; ok {
		if err := unix.Fsetxattr(int(f.Fd()), "security.capability", []byte(v), 0); err != nil {
			return fmt.Errorf("restoring %s: setting security.capability: %w", abs, err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("restoring %s: setting the mode: %w", abs, err)
	}
	return nil
}

// writeSparse copies size bytes from r to f, seeking over blocks of zeros instead of writing
// them, and sets the length last (a file that ends in a hole).
func (x *extractor) writeSparse(f *os.File, r io.Reader, size int64) error {
	var off int64
	for off < size {
		n, err := io.ReadFull(r, x.buf[:min(int64(len(x.buf)), size-off)])
		if n > 0 {
			if werr := x.writeChunk(f, x.buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil {
			if off < size {
				return fmt.Errorf("the archive ends inside the file (%d of %d bytes): %w", off, size, err)
			}
			break
		}
	}
	return f.Truncate(size)
}

func (x *extractor) writeChunk(f *os.File, b []byte, off int64) error {
	for len(b) > 0 {
		k := min(len(b), holeBlock)
		if !bytes.Equal(b[:k], x.zero[:k]) {
			// Write the whole run of non-zero blocks at once.
			for k < len(b) {
				next := min(len(b)-k, holeBlock)
				if bytes.Equal(b[k:k+next], x.zero[:next]) {
					break
				}
				k += next
			}
			if _, err := f.WriteAt(b[:k], off); err != nil {
				return err
			}
		}
		b, off = b[k:], off+int64(k)
	}
	return nil
}
