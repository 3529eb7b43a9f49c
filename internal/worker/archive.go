package worker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/strategy"

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
// name seen; owners numeric; modification times to the nanosecond; the security.capability
// extended attribute (as the Engine keeps it). Sockets are skipped, like the Engine does.
//
// A staged restore's directory at the root of one of mounts (left by a power cut) is skipped.
//
// It returns what the stream holds, digested as the volume strategy digests a tar stream
// (strategy.Volume's Count), from the entries as they are written: no second parse.
func Archive(ctx context.Context, paths, mounts []string, w io.Writer) (*artifact.Contents, error) {
	tw := tar.NewWriter(w)
	a := &archiver{ctx: ctx, tw: tw, mounts: mounts, links: map[fileID]string{}, buf: make([]byte, 1<<20), hash: xxhash.New()}
	for _, p := range paths {
		if err := a.walk(p, trimSlash(p)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &artifact.Contents{Files: a.tree.Files, Bytes: a.tree.Bytes, Tree: a.tree.Sum()}, nil
}

type fileID struct{ dev, ino uint64 }

type archiver struct {
	ctx    context.Context
	mounts []string
	tw     *tar.Writer
	links  map[fileID]string
	buf    []byte
	tree   artifact.TreeDigest
	hash   *xxhash.Digest
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

// walk archives the file at abs (its entry named name) and, for a directory, what it holds.
func (a *archiver) walk(abs, name string) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil
	}
	if err := a.add(abs, name, fi); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	entries, err := os.ReadDir(abs) // sorted by name
	if err != nil {
		return fmt.Errorf("reading the directory %s: %w", abs, err)
	}
	for _, e := range entries {
		if e.IsDir() && strategy.IsStaging(abs+"/"+e.Name(), a.mounts) {
			continue
		}
		if err := a.walk(abs+"/"+e.Name(), name+"/"+e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// noNames keeps tar.FileInfoHeader from looking up user and group names.
type noNames struct{ fs.FileInfo }

func (noNames) Uname() (string, error) { return "", nil }
func (noNames) Gname() (string, error) { return "", nil }

func (a *archiver) add(abs, name string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(abs); err != nil {
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
	if v, err := lgetxattr(abs, "security.capability"); err == nil && len(v) > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(v)}
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archiving %s: %w", abs, err)
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
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("reading %s: %w", abs, err)
	}
	defer f.Close()
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

// digest adds an entry to the tree digest as strategy.Volume's Count does for the same
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

// lgetxattr reads one extended attribute of a file without following a link.
func lgetxattr(file, attr string) ([]byte, error) {
	buf := make([]byte, 128)
	for {
		n, err := unix.Lgetxattr(file, attr, buf)
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
