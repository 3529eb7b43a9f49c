//go:build linux

package tree

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"golang.org/x/sys/unix"
)

// Type bits of a tar header's mode, as the Engine's archive API writes them (the volume
// strategy's tree digest includes them): the same backup made either way digests alike.
const (
	modeDir     = 0o040000
	modeFifo    = 0o010000
	modeReg     = 0o100000
	modeSymlink = 0o120000
	modeBlock   = 0o060000
	modeChar    = 0o020000
)

// Archive writes one tar stream of paths to w in the volume strategy's format: entries named
// by their absolute path without the leading slash ("data/x"), each path's entries together,
// each directory before what it holds and names in increasing order (the order of the
// Engine's archive API, which the restore's tar policy requires); hard links to the first
// name seen in the same path (a file linked from two paths is archived whole in each, as the
// Engine's archive API does: a restore takes each path's archive on its own); owners numeric; modification times to the nanosecond; the security.capability
// extended attribute of files and directories (as the Engine keeps it). Sockets are skipped, like the Engine does.
//
// Below each path nothing is reached by its name from the root: each entry is opened in its
// directory's descriptor without following a symbolic link (openat, O_NOFOLLOW), so a link
// that a running service swaps in for a directory while it is archived leads nowhere.
//
// A staged restore's directory at the root of one of mounts (left by a power cut) is skipped.
// The walk stays on the mount of each path: another mount below it is archived only when it
// is one of mounts (a volume of the service mounted inside another, which the Engine's
// archive API includes too); any other (the worker's own socket directory below a path
// /run, a mount made on the host inside a volume's directory) is left out with its mount
// point.
//
// The entries below each path that excl matches are left out (an excluded directory is not
// entered); nil leaves nothing out.
//
// It returns what the stream holds, digested as the volume strategy digests a tar stream
// (the volume strategy's Count), from the entries as they are written: no second parse.
func Archive(ctx context.Context, paths, mounts []string, excl *exclude.Set, w io.Writer) (*artifact.Contents, error) {
	return ArchiveRoots(ctx, rootsOf(paths), mounts, excl, w)
}

// rootsOf is the Root of each absolute path.
func rootsOf(paths []string) []Root {
	roots := make([]Root, 0, len(paths))
	for _, p := range paths {
		p = path.Clean("/" + p)
		if p == "/" {
			roots = append(roots, Root{Dir: "/", Rel: ".", Name: ""})
			continue
		}
		roots = append(roots, Root{Dir: path.Dir(p), Rel: path.Base(p), Name: trimSlash(p)})
	}
	return roots
}

// Root is a path Archive reads: the directory Dir is opened by its name (a path this process
// trusts: a mount point, a volume's directory on the host), Rel below it without following a
// link, and the entries are named Name and below (a path in the service's container without
// the leading slash).
type Root struct {
	Dir, Rel, Name string
}

// ArchiveRoots is Archive of roots.
func ArchiveRoots(ctx context.Context, roots []Root, mounts []string, excl *exclude.Set, w io.Writer) (*artifact.Contents, error) {
	tw := tar.NewWriter(w)
	a := &archiver{ctx: ctx, tw: tw, mounts: mounts, exclude: excl, buf: make([]byte, 256<<10), hash: xxhash.New()}
	if err := a.walkRoots(roots); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &artifact.Contents{Files: a.tree.Files, Bytes: a.tree.Bytes, Tree: a.tree.Sum()}, nil
}

// walkRoots archives (or measures) each of roots in turn.
func (a *archiver) walkRoots(roots []Root) error {
	for _, r := range roots {
		// One map of hard links per path: a link into another path's entries would make an
		// archive that no restore accepts (the tar policy keeps each path's links inside it).
		a.links = map[fileID]string{}
		if err := a.archiveRoot(r); err != nil {
			return err
		}
		if a.measure != nil {
			a.measure.settle()
		}
	}
	return nil
}

type fileID struct{ dev, ino uint64 }

type archiver struct {
	ctx     context.Context
	mounts  []string
	exclude *exclude.Set
	root    string // the entry name of the path being archived
	tw      *tar.Writer
	links   map[fileID]string
	buf     []byte
	tree    artifact.TreeDigest
	hash    *xxhash.Digest
	// measure, when set, records what each entry adds instead of writing it (MeasureRoots),
	// and walks what the exclusions leave out too.
	measure *measuring
	// incr, when set, makes the stream incremental (ArchiveIncremental).
	incr *incremental
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

// archiveRoot archives r: its directory is opened by name, the rest through descriptors.
func (a *archiver) archiveRoot(r Root) error {
	abs := path.Join(r.Dir, r.Rel)
	dfd, err := openDir(unix.AT_FDCWD, r.Dir, true)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	defer func() { unix.Close(dfd) }()
	parts := strings.Split(path.Clean(r.Rel), "/")
	for _, part := range parts[:len(parts)-1] {
		fd, err := openDir(dfd, part, false)
		if err != nil {
			return fmt.Errorf("reading %s: %w", abs, err)
		}
		unix.Close(dfd)
		dfd = fd
	}
	a.root = r.Name
	return a.walk(dfd, parts[len(parts)-1], abs, r.Name, nil, false)
}

// excluded reports whether the entry name (below the path being archived) is left out.
func (a *archiver) excluded(name string, dir bool) bool {
	if a.exclude.Empty() {
		return false
	}
	rel := name
	if a.root != "" {
		rel = strings.TrimPrefix(name, a.root+"/")
	}
	return a.exclude.Match(rel, dir)
}

// openDir opens the directory name in dfd; follow: a symbolic link (in the trusted path to an
// archived path) is followed.
func openDir(dfd int, name string, follow bool) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	for {
		fd, err := unix.Openat(dfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// walk archives the entry base of the directory dfd (its path abs, its entry named name) and,
// for a directory, what it holds; parent is the directory dfd (nil for a path's root). out:
// the entry is below one the exclusions leave out (walked only to measure it).
func (a *archiver) walk(dfd int, base, abs, name string, parent *statInfo, out bool) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	fi, err := lstatAt(dfd, base)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	if fi.Mode()&fs.ModeSocket != 0 || a.foreign(parent, fi, abs) {
		return nil
	}
	if !out && parent != nil && a.excluded(name, fi.IsDir()) {
		if a.measure == nil {
			return nil
		}
		out = true
	}
	if !fi.IsDir() {
		return a.put(dfd, base, abs, name, fi, -1, out)
	}
	fd, err := openDir(dfd, base, false)
	if err != nil {
		return fmt.Errorf("reading the directory %s: %w", abs, err)
	}
	defer unix.Close(fd)
	if err := sameFile(fd, fi); err != nil {
		return fmt.Errorf("%s %w", abs, err)
	}
	if err := a.put(dfd, base, abs, name, fi, fd, out); err != nil {
		return err
	}
	entries, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("reading the directory %s: %w", abs, err)
	}
	dirAbs := strings.TrimSuffix(abs, "/")
	prefix := name
	if prefix != "" {
		prefix += "/"
	}
	for _, e := range entries {
		if e.IsDir() && mountpath.IsStaging(dirAbs+"/"+e.Name(), a.mounts) {
			continue
		}
		if err := a.walk(fd, e.Name(), dirAbs+"/"+e.Name(), prefix+e.Name(), fi, out); err != nil {
			return err
		}
	}
	return nil
}

// foreign reports whether fi, at abs in the directory parent, is the root of a mount other
// than parent's that is not one of a.mounts: the walk does not enter it. Mounts are told
// apart by their IDs (statx), so that a bind mount of the same file system is one too and a
// btrfs subvolume (another device number, the same mount) is not; by device numbers where
// the kernel gives no mount ID (before Linux 5.8).
func (a *archiver) foreign(parent, fi *statInfo, abs string) bool {
	if parent == nil {
		return false
	}
	same := parent.st.Dev == fi.st.Dev
	if parent.mnt != 0 && fi.mnt != 0 {
		same = parent.mnt == fi.mnt
	}
	return !same && !slices.Contains(a.mounts, abs)
}

// readDirNames lists the directory fd (read from its start) sorted by name. It does not
// close fd.
func readDirNames(fd int) ([]fs.DirEntry, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(x, y fs.DirEntry) int { return strings.Compare(x.Name(), y.Name()) })
	return entries, nil
}

// errChanged: the entry opened is not the one examined a moment before.
var errChanged = errors.New("changed while it was archived (stop the service during backups: --stop)")

// sameFile checks that the open fd is the file fi describes (its device, inode and type).
func sameFile(fd int, fi fs.FileInfo) error {
	var sx unix.Statx_t
	if err := statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_TYPE|unix.STATX_INO, &sx); err != nil {
		return err
	}
	want := fi.Sys().(*syscall.Stat_t)
	if unix.Mkdev(sx.Dev_major, sx.Dev_minor) != want.Dev || sx.Ino != want.Ino || uint32(sx.Mode)&unix.S_IFMT != want.Mode&unix.S_IFMT {
		return errChanged
	}
	return nil
}

// openRegular opens the regular file base of the directory dfd for reading, fi being what
// was found there a moment before. The entry is first opened as a location only (O_PATH:
// nothing is opened — no device's driver, no named pipe) and checked to be that very file;
// only then is it opened for reading, through that descriptor (/proc/self/fd), so that a
// device node or a pipe swapped in meanwhile is never opened. Without /proc it is opened by
// its name, non-blocking and without becoming a controlling terminal, and checked again.
func openRegular(dfd int, base string, fi fs.FileInfo) (int, error) {
	pfd, err := openat(dfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := sameFile(pfd, fi); err != nil {
		return -1, err
	}
	const read = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := openat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(pfd), read)
	if errors.Is(err, unix.ENOENT) {
		fd, err = openat(dfd, base, read|unix.O_NOFOLLOW)
	}
	if err != nil {
		return -1, err
	}
	if err := sameFile(fd, fi); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openat is unix.Openat, again when interrupted.
func openat(dfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// noNames keeps tar.FileInfoHeader from looking up user and group names.
type noNames struct{ fs.FileInfo }

func (noNames) Uname() (string, error) { return "", nil }
func (noNames) Gname() (string, error) { return "", nil }

// put adds the entry of the file fi to the archive, or, when measuring, to what the backup
// holds or (out) leaves out.
func (a *archiver) put(dfd int, base, abs, name string, fi fs.FileInfo, fd int, out bool) error {
	if a.measure != nil {
		a.measure.record(fi, out)
		return nil
	}
	return a.add(dfd, base, abs, name, fi, fd)
}

// add writes the entry of the file fi (base in the directory dfd; fd, when not -1, is the
// file open already: a directory).
func (a *archiver) add(dfd int, base, abs, name string, fi fs.FileInfo, fd int) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = readlinkAt(dfd, base); err != nil {
			return fmt.Errorf("reading the link %s: %w", abs, err)
		}
	}
	hdr, err := tar.FileInfoHeader(noNames{fi}, link)
	if err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Mode |= typeBits(fi.Mode())
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && fi.Mode().IsRegular() && st.Nlink > 1 {
		id := fileID{uint64(st.Dev), st.Ino}
		if first, ok := a.links[id]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			a.links[id] = name
		}
	}
	if a.incr != nil {
		unchanged, err := a.incr.header(hdr, st)
		if err != nil {
			return err
		}
		if unchanged {
			return a.addUnchanged(hdr, abs)
		}
	}
	var f *os.File
	if hdr.Typeflag == tar.TypeReg {
		nfd, err := openRegular(dfd, base, fi)
		if errors.Is(err, errChanged) {
			return fmt.Errorf("%s %w", abs, err)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", abs, err)
		}
		f = os.NewFile(uintptr(nfd), abs)
		defer f.Close()
		fd = nfd
	}
	// Capabilities are read through the open descriptor: a file's or a directory's. A link, a
	// device or a named pipe is not opened (capabilities mean nothing there), and no path is
	// looked up by name again.
	var capability []byte
	if fd >= 0 {
		capability, err = xattr(func(buf []byte) (int, error) { return unix.Fgetxattr(fd, tarpolicy.CapabilityXattr, buf) })
	}
	if err == nil && len(capability) > 0 {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+tarpolicy.CapabilityXattr] = string(capability)
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archiving %s: %w", abs, err)
	}
	if a.incr != nil {
		return a.copyContent(f, hdr, abs)
	}
	a.digest(hdr)
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	a.hash.Reset()
	if hdr.Size == 0 {
		a.tree.AddContent(0, a.hash.Sum64())
		return nil
	}
	n, err := io.CopyBuffer(io.MultiWriter(a.tw, a.hash), struct{ io.Reader }{f}, a.buf)
	if err != nil {
		if errors.Is(err, tar.ErrWriteTooLong) {
			return fmt.Errorf("%s grew while it was archived (stop the service during backups: --stop)", abs)
		}
		return fmt.Errorf("archiving %s: %w", abs, err)
	}
	if n < hdr.Size {
		return fmt.Errorf("%s shrank while it was archived (%d of %d bytes; stop the service during backups: --stop)", abs, n, hdr.Size)
	}
	a.tree.AddContent(n, a.hash.Sum64())
	return nil
}

// digest adds an entry to the tree digest as the volume strategy's Count does for the same
// header read back from the stream.
func (a *archiver) digest(hdr *tar.Header) {
	name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
	switch hdr.Typeflag {
	case tar.TypeDir:
		a.tree.Add(artifact.EntryDir, name, hdr.Mode, hdr.Uid, hdr.Gid, "")
	case tar.TypeReg, tar.TypeLink:
		a.tree.Add(artifact.EntryFile, name, hdr.Mode, hdr.Uid, hdr.Gid, "")
	case tar.TypeSymlink:
		a.tree.Add(artifact.EntrySymlink, name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname)
	default:
		a.tree.Add(artifact.EntryOther, name, hdr.Mode, hdr.Uid, hdr.Gid, fmt.Sprintf("%c %d %d", hdr.Typeflag, hdr.Devmajor, hdr.Devminor))
	}
}

func typeBits(m fs.FileMode) int64 {
	switch {
	case m.IsRegular():
		return modeReg
	case m.IsDir():
		return modeDir
	case m&fs.ModeSymlink != 0:
		return modeSymlink
	case m&fs.ModeCharDevice != 0:
		return modeChar
	case m&fs.ModeDevice != 0:
		return modeBlock
	case m&fs.ModeNamedPipe != 0:
		return modeFifo
	}
	return 0
}

// setInt stores v in a field whose integer type depends on the architecture.
func setInt[T ~int32 | ~int64 | ~uint32 | ~uint64](p *T, v int64) { *p = T(v) }

// lstatAt examines the entry name of the directory dfd without following a link (statx:
// with the ID of its mount).
func lstatAt(dfd int, name string) (*statInfo, error) {
	var sx unix.Statx_t
	if err := statx(dfd, name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx); err != nil {
		return nil, err
	}
	ts := func(t unix.StatxTimestamp) syscall.Timespec { return syscall.NsecToTimespec(t.Sec*1e9 + int64(t.Nsec)) }
	info := &statInfo{name: path.Base(name), st: syscall.Stat_t{
		// archive/tar reads owners and device numbers from a *syscall.Stat_t.
		Dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), Ino: sx.Ino, Mode: uint32(sx.Mode),
		Uid: sx.Uid, Gid: sx.Gid, Rdev: unix.Mkdev(sx.Rdev_major, sx.Rdev_minor), Size: int64(sx.Size),
		Blocks: int64(sx.Blocks), Atim: ts(sx.Atime), Mtim: ts(sx.Mtime), Ctim: ts(sx.Ctime),
	}}
	// Their width differs between architectures.
	setInt(&info.st.Nlink, int64(sx.Nlink))
	setInt(&info.st.Blksize, int64(sx.Blksize))
	if sx.Mask&unix.STATX_MNT_ID != 0 {
		info.mnt = sx.Mnt_id
	}
	return info, nil
}

// statx is unix.Statx (synchronised as stat is), again when interrupted.
func statx(dfd int, name string, flags, mask int, sx *unix.Statx_t) error {
	for {
		err := unix.Statx(dfd, name, flags|unix.AT_STATX_SYNC_AS_STAT, mask, sx)
		if err != unix.EINTR {
			return err
		}
	}
}

// statInfo is the fs.FileInfo of a stat, as os.Lstat makes it, and the ID of the entry's
// mount (0: unknown).
type statInfo struct {
	name string
	st   syscall.Stat_t
	mnt  uint64
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }
func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// readlinkAt reads the link name in the directory dfd.
func readlinkAt(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err == unix.EINTR {
			size /= 2
			continue
		}
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// xattr reads one extended attribute with get (unix.Fgetxattr of an open file, unix.Lgetxattr
// of a path), growing the buffer as needed.
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
