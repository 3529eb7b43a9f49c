//go:build linux

// Package extract writes a volume archive into the mounted volumes, in the worker: each entry
// checked by the volume strategy's tar policy, every write through a directory held open
// beneath its mount (os.Root), nothing through a link; in place (Tar) or staged beside the
// data (Staging) and moved into place only on the caller's verdict (Extractor.Commit).
package extract

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
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"github.com/docker-backup/docker-backup/internal/writeback"
	"golang.org/x/sys/unix"
)

// Tar writes the volume archive read from r into the mounted paths, as the Engine's
// archive API would: every entry is first checked by the volume strategy's tar policy (so
// nothing lands outside the backed-up paths and nothing is written through a link, whatever
// the archive says); an existing entry is replaced unless both are directories (a directory
// is merged); owners, modes (set-user-ID and sticky bits after the owner), the
// security.capability attribute of regular files (only from a trusted backup: the policy
// removes it from others) and times are applied; directory times last. Runs of zeros
// in a file are left as holes, so sparse files stay sparse. Entries already on disk that the
// archive does not hold are left alone.
//
// mounts are the directories (or files) mounted into the worker; each path is written
// through an os.Root opened at the mount that holds it, so that even a link swapped in
// meanwhile cannot lead a write out of that volume.
func Tar(ctx context.Context, r io.Reader, paths, mounts []string, trusted bool) error {
	x := New(paths, mounts, trusted, nil)
	defer x.Close()
	return x.Run(ctx, r)
}

// New returns an Extractor of archives of paths into mounts; trusted: the backup is signed.
// With st, files are staged there, and Commit moves them into place.
func New(paths, mounts []string, trusted bool, st *Staging) *Extractor {
	x := &Extractor{pol: tarpolicy.New(paths, trusted), mounts: mounts, roots: map[string]*dirRoot{},
		isFile: map[string]bool{}, buf: make([]byte, 1<<20), zero: make([]byte, holeBlock),
		slots: make(chan []byte, smallFileWriters), stage: st}
	for range smallFileWriters {
		x.slots <- make([]byte, smallFile)
	}
	return x
}

// Run extracts the archive r (see Tar).
func (x *Extractor) Run(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.failed(); err != nil {
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
	x.wg.Wait()
	if err := x.failed(); err != nil {
		return err
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

// writebackChunk is how much of a file is written before its write-back to disk is started
// (without waiting): the disk writes while the archive is unpacked on, and the sync before
// the files are moved into place (or at the end) finds little left to do. A small file's
// write-back starts once it is written.
const writebackChunk = 8 << 20

// Small files are read whole and written by up to smallFileWriters goroutines while the
// archive is read on: their many system calls (create, write, owner, mode, times, close)
// overlap instead of queueing behind each other.
const (
	smallFile        = 1 << 20
	smallFileWriters = 4
)

type dirTime struct {
	root  *os.Root
	name  string
	abs   string
	mtime time.Time
	// For a staged restore: the volume it goes to, and the directory's owner and mode.
	real     *os.Root
	uid, gid int
	perm     fs.FileMode
}

// dirRoot is an os.Root of a directory entries are written into, shared with the writers of
// small files: a directory's root is closed once it is no longer the current one and no
// writer uses it.
type dirRoot struct {
	root  *os.Root
	refs  int  // writers using it
	stale bool // no longer the current directory
	mount bool // a mount's root: closed at the end
	// For a mount's root: the directory it is opened at, and the volume it stages for (nil:
	// the restore writes in place).
	dir    string
	staged *stagedMount
	// f is the directory, opened on first use by dirFD (closed with the root).
	f *os.File
}

// dirFD returns a descriptor of d's directory, for the calls os.Root has no method for
// (mknodat, utimensat of a link): they resolve one name in it, never a path from the root.
func (d *dirRoot) dirFD() (int, error) {
	if d.f == nil {
		f, err := d.root.Open(".")
		if err != nil {
			return -1, err
		}
		d.f = f
	}
	return int(d.f.Fd()), nil
}

// closeRoot closes d's root and its directory's descriptor.
func (d *dirRoot) closeRoot() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
	d.root.Close()
}

// Extractor writes the entries of volume archives (see Tar).
type Extractor struct {
	pol    *tarpolicy.Policy
	mounts []string
	roots  map[string]*dirRoot // the mounts' roots, by the directory opened
	isFile map[string]bool     // mounts that are files
	dirs   []dirTime
	buf    []byte
	zero   []byte // read-only
	// The root of the directory the last entry went into (see inDir).
	cur    *dirRoot
	curOf  *os.Root
	curDir string

	stage *Staging // nil: in place

	slots chan []byte // a free buffer per small-file writer
	wg    sync.WaitGroup
	mu    sync.Mutex // guards dirRoot.refs and .stale, and err
	err   error
}

// Dropped says what the tar policy left out (privileged extended attributes of a backup that
// is not trusted), for a warning; "" when nothing.
func (x *Extractor) Dropped() string { return x.pol.Dropped() }

// Close waits for the writers and closes the roots it holds.
func (x *Extractor) Close() {
	x.wg.Wait()
	if x.cur != nil {
		x.retire(x.cur)
	}
	for _, r := range x.roots {
		r.closeRoot()
	}
}

// retire closes d once no writer uses it (a mount's root stays open).
func (x *Extractor) retire(d *dirRoot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d.stale = true
	if d.refs == 0 && !d.mount {
		d.closeRoot()
	}
}

func (x *Extractor) release(d *dirRoot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d.refs--
	if d.refs == 0 && d.stale && !d.mount {
		d.closeRoot()
	}
}

func (x *Extractor) fail(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err == nil {
		x.err = err
	}
}

func (x *Extractor) failed() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// locate returns the root to write abs through and abs's name in it; mountPoint is set when
// abs is a mounted file itself (it cannot be replaced, only rewritten).
func (x *Extractor) locate(abs string) (root *dirRoot, name string, mountPoint bool, err error) {
	best := ""
	for _, m := range x.mounts {
		if mountpath.Inside(abs, m) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return nil, "", false, fmt.Errorf("%s is not on a volume mounted into the worker", abs)
	}
	dir := best
	isFile, known := x.isFile[best]
	if !known {
		fi, err := os.Stat(best)
		isFile = err == nil && !fi.IsDir()
		x.isFile[best] = isFile
	}
	if isFile {
		if x.stage != nil {
			return nil, "", abs == best, nil // staged apart (see entry)
		}
		dir, mountPoint = path.Dir(best), abs == best
	}
	root, ok := x.roots[dir]
	if !ok {
		if x.stage != nil && !isFile {
			sm, err := x.stage.open(dir)
			if err != nil {
				return nil, "", false, err
			}
			root = &dirRoot{root: sm.stage, mount: true, dir: path.Join(dir, x.stage.name), staged: sm}
		} else {
			r, err := os.OpenRoot(dir)
			if err != nil {
				return nil, "", false, fmt.Errorf("opening %s: %w", dir, err)
			}
			root = &dirRoot{root: r, mount: true, dir: dir}
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
func (x *Extractor) inDir(mount *dirRoot, name string) (*dirRoot, string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return mount, name, nil
	}
	dir = strings.TrimSuffix(dir, "/")
	if x.cur == nil || x.curOf != mount.root || x.curDir != dir {
		if x.cur != nil {
			x.retire(x.cur)
			x.cur = nil
		}
		sub, err := mount.root.OpenRoot(dir)
		if errors.Is(err, fs.ErrNotExist) && mount.staged != nil {
			// Directories above a restored path are not in the archive: staged as plain ones
			// (merged into those in place at the commit, as they are).
			if err = mount.root.MkdirAll(dir, 0o755); err == nil {
				sub, err = mount.root.OpenRoot(dir)
			}
		}
		if err != nil {
			return nil, "", err
		}
		x.cur, x.curOf, x.curDir = &dirRoot{root: sub}, mount.root, dir
	}
	return x.cur, base, nil
}

// entry writes one entry of the archive where it goes: what is there is replaced (a directory
// merged, a mounted file rewritten), then its owner, mode and times are set.
func (x *Extractor) entry(hdr *tar.Header, r io.Reader) error {
	p, err := x.place(hdr)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && !p.mountPoint && hdr.Size <= smallFile && p.name != "." {
		return x.small(p.dir, p.name, hdr, r)
	}
	if hdr.Typeflag == tar.TypeLink {
		// The file it links to may still be being written.
		x.wg.Wait()
		if err := x.failed(); err != nil {
			return err
		}
	}
	mode := hdr.FileInfo().Mode()
	perm := mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	exists, err := p.clear(hdr)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		return x.file(p, hdr, perm, r)
	}
	if err := x.create(p, hdr, perm, exists); err != nil {
		return err
	}
	return p.setMeta(hdr, perm)
}

// placed is where an entry goes: the root of the mount that holds it and its name there, the
// root of its directory and its name there.
type placed struct {
	abs        string
	mount      *dirRoot
	fullName   string // in mount
	dir        *dirRoot
	name       string // in dir
	mountPoint bool   // a mounted file: rewritten, never replaced
}

func (p placed) fail(what string, err error) error {
	return fmt.Errorf("restoring %s: %s: %w", p.abs, what, err)
}

// place finds where hdr goes: in place, or for a staged restore in the staging directory of
// its mount (a mounted file in the worker's own).
func (x *Extractor) place(hdr *tar.Header) (placed, error) {
	p := placed{abs: "/" + strings.TrimSuffix(hdr.Name, "/")}
	var err error
	if p.mount, p.fullName, p.mountPoint, err = x.locate(p.abs); err != nil {
		return p, err
	}
	if x.stage != nil {
		if mountpath.IsStaging(p.abs, x.mounts) {
			return p, fmt.Errorf("restoring %s: the archive holds a staged restore's directory", p.abs)
		}
		if p.mountPoint {
			// A mounted file cannot be renamed over: staged in the worker, copied at the commit.
			if hdr.Typeflag != tar.TypeReg {
				return p, fmt.Errorf("restoring %s: it is a mounted file, the archive has a %q entry", p.abs, hdr.Typeflag)
			}
			if p.mount, p.fullName, err = x.stage.file(p.abs, hdr); err != nil {
				return p, err
			}
			p.mountPoint = false
		}
	}
	if p.dir, p.name, err = x.inDir(p.mount, p.fullName); err != nil {
		return p, fmt.Errorf("restoring %s: opening its directory: %w", p.abs, err)
	}
	return p, nil
}

// clear removes what is at the entry's place unless both are directories (merged) or it is a
// mounted file; exists says whether something stays there.
func (p placed) clear(hdr *tar.Header) (exists bool, err error) {
	existing, statErr := p.dir.root.Lstat(p.name)
	exists = statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return false, p.fail("looking at what is there", statErr)
	}
	if exists && !(existing.IsDir() && hdr.Typeflag == tar.TypeDir) && !p.mountPoint {
		if p.name == "." {
			return false, p.fail("replacing", fmt.Errorf("a volume's root is a directory, the archive has a %q entry", hdr.Typeflag))
		}
		if err := p.dir.root.RemoveAll(p.name); err != nil {
			return false, p.fail("removing what was there", err)
		}
		exists = false
	}
	return exists, nil
}

// file writes a regular file that is not small (or a mounted one), with its owner, mode and
// times.
func (x *Extractor) file(p placed, hdr *tar.Header, perm fs.FileMode, r io.Reader) error {
	flags := os.O_CREATE | os.O_EXCL | os.O_WRONLY
	if p.mountPoint {
		flags = os.O_WRONLY | os.O_TRUNC
	}
	root := p.dir.root
	f, err := root.OpenFile(p.name, flags, fs.ModePerm&perm)
	if err != nil {
		return p.fail("creating the file", err)
	}
	return x.finishFile(root, p.name, f, hdr, perm, func(f *os.File) error { return x.writeSparse(f, r, hdr.Size) })
}

// create makes the directory (remembered: its times are set last), hard link, symbolic link
// or node hdr.
func (x *Extractor) create(p placed, hdr *tar.Header, perm fs.FileMode, exists bool) error {
	root := p.dir.root
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := root.Mkdir(p.name, fs.ModePerm&perm); err != nil {
				return p.fail("creating the directory", err)
			}
		}
		d := dirTime{root: p.mount.root, name: p.fullName, abs: p.abs, mtime: hdr.ModTime, uid: hdr.Uid, gid: hdr.Gid, perm: perm}
		if p.mount.staged != nil {
			d.real = p.mount.staged.real
		}
		x.dirs = append(x.dirs, d)
	case tar.TypeLink:
		oldAbs := "/" + strings.TrimSuffix(hdr.Linkname, "/")
		oldRoot, oldName, _, err := x.locate(oldAbs)
		if err != nil {
			return err
		}
		if oldRoot != p.mount {
			return p.fail("linking", fmt.Errorf("the hard link's target %s is on another volume", oldAbs))
		}
		if err := p.mount.root.Link(oldName, p.fullName); err != nil {
			return p.fail("linking to "+oldAbs, err)
		}
	case tar.TypeSymlink:
		if err := root.Symlink(hdr.Linkname, p.name); err != nil {
			return p.fail("creating the symbolic link", err)
		}
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		if err := makeNode(p.dir, p.name, hdr, perm); err != nil {
			return p.fail("creating the node", err)
		}
	default:
		return p.fail("creating", fmt.Errorf("unsupported entry type %q", hdr.Typeflag))
	}
	return nil
}

// setMeta gives what create made its owner, then its mode and times (a hard link has its
// file's; a directory gets its times last).
func (p placed) setMeta(hdr *tar.Header, perm fs.FileMode) error {
	root := p.dir.root
	if err := root.Lchown(p.name, hdr.Uid, hdr.Gid); err != nil {
		return p.fail("setting the owner", err)
	}
	if hdr.Typeflag == tar.TypeSymlink {
		if err := linkTimes(p.dir, p.name, hdr.ModTime); err != nil {
			return p.fail("setting the link's times", err)
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil // the file it shares has its owner, mode and times
	}
	// After the owner: changing it clears the set-user-ID bits.
	if err := root.Chmod(p.name, perm); err != nil {
		return p.fail("setting the mode", err)
	}
	if hdr.Typeflag != tar.TypeDir {
		if err := root.Chtimes(p.name, hdr.ModTime, hdr.ModTime); err != nil {
			return p.fail("setting the times", err)
		}
	}
	return nil
}

// makeNode makes the named pipe or device hdr at name in dr's directory, through its
// descriptor: a directory on the way swapped for a link meanwhile (the service runs during a
// staged restore) leads nowhere.
func makeNode(dr *dirRoot, name string, hdr *tar.Header, perm fs.FileMode) error {
	typ := map[byte]uint32{tar.TypeFifo: unix.S_IFIFO, tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK}[hdr.Typeflag]
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	fd, err := dr.dirFD()
	if err != nil {
		return err
	}
	return unix.Mknodat(fd, name, typ|uint32(perm&fs.ModePerm), int(dev))
}

// linkTimes sets the times of the symbolic link name in dr's directory (not of what it points
// at), through its descriptor.
func linkTimes(dr *dirRoot, name string, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	fd, err := dr.dirFD()
	if err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// small reads a small regular file whole and has it written by a writer goroutine.
func (x *Extractor) small(dr *dirRoot, name string, hdr *tar.Header, r io.Reader) error {
	buf := <-x.slots
	data := buf[:hdr.Size]
	if n, err := io.ReadFull(r, data); err != nil {
		x.slots <- buf
		return fmt.Errorf("restoring /%s: the archive ends inside the file (%d of %d bytes): %w", hdr.Name, n, hdr.Size, err)
	}
	x.mu.Lock()
	dr.refs++
	x.mu.Unlock()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer x.release(dr)
		defer func() { x.slots <- buf }()
		if err := x.writeSmall(dr.root, name, hdr, data); err != nil {
			x.fail(err)
		}
	}()
	return nil
}

// writeSmall replaces whatever is at name with the regular file hdr, holding data.
func (x *Extractor) writeSmall(root *os.Root, name string, hdr *tar.Header, data []byte) error {
	abs := "/" + hdr.Name
	fail := func(what string, err error) error { return fmt.Errorf("restoring %s: %s: %w", abs, what, err) }
	perm := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if _, err := root.Lstat(name); err == nil {
		if err := root.RemoveAll(name); err != nil {
			return fail("removing what was there", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail("looking at what is there", err)
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.ModePerm&perm)
	if err != nil {
		return fail("creating the file", err)
	}
	return x.finishFile(root, name, f, hdr, perm, func(f *os.File) error {
		if err := x.writeChunk(f, data, 0); err != nil {
			return err
		}
		if err := f.Truncate(int64(len(data))); err != nil {
			return err
		}
		writeback.Start(f, 0, 0)
		return nil
	})
}

// finishFile writes the regular file f (opened at name in root) with write, sets its owner,
// security.capability and mode through f (no path to resolve again), closes it, and sets its
// times last.
func (x *Extractor) finishFile(root *os.Root, name string, f *os.File, hdr *tar.Header, perm fs.FileMode, write func(*os.File) error) error {
	fail := func(what string, err error) error { return fmt.Errorf("restoring /%s: %s: %w", hdr.Name, what, err) }
	if err := write(f); err != nil {
		f.Close()
		return fail("writing", err)
	}
	err := x.fileMeta(f, hdr, perm)
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
}

// fileMeta sets a regular file's owner, security.capability and mode (after the owner:
// changing it clears the set-user-ID bits) through f. A backup that is not trusted has no
// security.capability by then: the tar policy removed it.
func (x *Extractor) fileMeta(f *os.File, hdr *tar.Header, perm fs.FileMode) error {
	abs := "/" + hdr.Name
	if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("restoring %s: setting the owner: %w", abs, err)
	}
	if v, ok := hdr.PAXRecords["SCHILY.xattr."+tarpolicy.CapabilityXattr]; ok {
		if err := unix.Fsetxattr(int(f.Fd()), tarpolicy.CapabilityXattr, []byte(v), 0); err != nil {
			return fmt.Errorf("restoring %s: setting %s: %w", abs, tarpolicy.CapabilityXattr, err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("restoring %s: setting the mode: %w", abs, err)
	}
	return nil
}

// writeSparse copies size bytes from r to f, seeking over blocks of zeros instead of writing
// them, and sets the length last (a file that ends in a hole).
func (x *Extractor) writeSparse(f *os.File, r io.Reader, size int64) error {
	var off, started int64
	for off < size {
		n, err := io.ReadFull(r, x.buf[:min(int64(len(x.buf)), size-off)])
		if n > 0 {
			if werr := x.writeChunk(f, x.buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
			if off-started >= writebackChunk {
				writeback.Start(f, started, off-started)
				started = off
			}
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

func (x *Extractor) writeChunk(f *os.File, b []byte, off int64) error {
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
