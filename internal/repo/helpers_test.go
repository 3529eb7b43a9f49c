package repo

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/target"
	"golang.org/x/sys/unix"
)

// env is a repository on a local target, with its keys.
type env struct {
	t       *testing.T
	dir     string
	target  target.Target
	signer  *artifact.SigningKey
	ids     *crypt.Identities
	master  []byte
	encrypt bool
}

func newEnv(t *testing.T, encrypted bool) *env {
	t.Helper()
	dir := t.TempDir()
	tg, err := target.NewLocal(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := target.Sub(tg, "shop/repo")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, target: sub, signer: signer, encrypt: encrypted}
	var opts InitOptions
	if encrypted {
		opts.Recipients, e.ids = ageKeys(t)
	}
	r, err := Init(context.Background(), sub, opts, e.access())
	if err != nil {
		t.Fatal(err)
	}
	e.master = r.MasterKey()
	if encrypted && len(e.master) != 32 {
		t.Fatalf("an encrypted repository's master key is %d bytes", len(e.master))
	}
	return e
}

func ageKeys(t *testing.T) (*crypt.Recipients, *crypt.Identities) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id.txt")
	if err := os.WriteFile(f, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ids crypt.Identities
	if err := ids.AddFile(f); err != nil {
		t.Fatal(err)
	}
	var rs crypt.Recipients
	if err := rs.Add(id.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	return &rs, &ids
}

func (e *env) access() Access {
	return Access{Signer: e.signer, Trust: artifact.NewKeyring(e.signer), MasterKey: e.master, Host: "test", PackSize: 1 << 20}
}

// open opens the repository with the master key (a writer), tuned by fn.
func (e *env) open(fn func(*Access)) *Repo {
	e.t.Helper()
	a := e.access()
	if fn != nil {
		fn(&a)
	}
	r, err := Open(context.Background(), e.target, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// backupDir stores dir as a snapshot, reusing unchanged files of parent (may be nil).
func backupDir(ctx context.Context, r *Repo, dir string, parent *Snapshot) (*Snapshot, error) {
	w, err := r.NewWriter(ctx)
	if err != nil {
		return nil, err
	}
	var prev *tree.Finder
	if parent != nil {
		prev = r.readerWith(w.Index()).Finder(parent.Tree)
	}
	if err := addDir(ctx, w, dir, prev); err != nil {
		w.Abort(ctx)
		return nil, err
	}
	info := Snapshot{Project: "shop", Service: "files", Strategy: "volume", Paths: []string{"/data"}}
	if parent != nil {
		info.Parent = parent.ID
	}
	return w.Commit(ctx, info)
}

func addDir(ctx context.Context, w *Writer, dir string, prev *tree.Finder) error {
	inodes := map[uint64]string{}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		n, err := nodeOf(p)
		if err != nil {
			return err
		}
		switch {
		case n.Type == tree.Dir:
			return w.AddDir(rel, n)
		case n.Type == tree.File && n.NLink > 1 && inodes[n.Inode] != "":
			n.Type, n.LinkTarget = tree.Hardlink, inodes[n.Inode]
			return w.AddNode(rel, n)
		case n.Type == tree.File:
			if n.NLink > 1 {
				inodes[n.Inode] = rel
			}
			if prev != nil {
				old, err := prev.Find(ctx, rel)
				if err != nil {
					return err
				}
				if tree.Unchanged(old, &n) {
					if err := w.Reuse(rel, n, old); !errors.Is(err, ErrNotInRepository) {
						return err
					}
				}
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return w.AddFile(rel, n, f)
		}
		return w.AddNode(rel, n)
	})
}

func nodeOf(p string) (tree.Node, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return tree.Node{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	n := tree.Node{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Size: fi.Size(), MTime: fi.ModTime(),
		CTime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec), Inode: st.Ino, Device: st.Dev, NLink: uint64(st.Nlink)}
	n.Xattrs, err = xattrs(p)
	if err != nil {
		return n, err
	}
	switch {
	case fi.IsDir():
		n.Type, n.Size = tree.Dir, 0
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = tree.Symlink
		n.LinkTarget, err = os.Readlink(p)
	case fi.Mode()&fs.ModeNamedPipe != 0:
		n.Type, n.Size = tree.FIFO, 0
	case fi.Mode().IsRegular():
		n.Type = tree.File
	default:
		return n, fmt.Errorf("%s: unexpected file type %s", p, fi.Mode())
	}
	return n, err
}

// fileHash is a directory's digest: each entry's path, type, mode, mtime, size, content
// SHA-256 or link target, and which paths are hard links of one another.
func dirHash(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	groups := map[uint64][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		n, err := nodeOf(p)
		if err != nil {
			return err
		}
		content := n.LinkTarget
		if n.Type == tree.File {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = sum(b)
			if n.NLink > 1 {
				groups[n.Inode] = append(groups[n.Inode], rel)
			}
		}
		lines = append(lines, entryLine(rel, n.Type, n.Mode, n.MTime, n.Size, content)+xattrLine(n.Xattrs))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		lines = append(lines, "links "+strings.Join(g, " "))
	}
	return digest(lines)
}

func entryLine(p, typ string, mode uint32, mtime time.Time, size int64, content string) string {
	if typ == tree.Dir || typ == tree.Symlink {
		size = 0
	}
	mt := mtime.UTC().Format(time.RFC3339Nano)
	if typ == tree.Symlink {
		mt, mode = "", 0 // not restorable on Linux
	}
	return fmt.Sprintf("%s %s %o %s %d %s", p, typ, mode, mt, size, content)
}

func digest(lines []string) string {
	sort.Strings(lines)
	for i, l := range lines {
		if strings.HasPrefix(l, "links ") {
			f := strings.Fields(l)[1:]
			slices.Sort(f)
			lines[i] = "links " + strings.Join(f, " ")
		}
	}
	sort.Strings(lines)
	return sum([]byte(strings.Join(lines, "\n")))
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// tarHash is the same digest of a restore's tar stream.
func tarHash(t *testing.T, b []byte) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var lines []string
	groups := map[string][]string{}
	contents := map[string]string{}
	headers := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		typ, content := map[byte]string{tar.TypeReg: tree.File, tar.TypeDir: tree.Dir, tar.TypeSymlink: tree.Symlink, tar.TypeLink: tree.File, tar.TypeFifo: tree.FIFO}[h.Typeflag], h.Linkname
		size := h.Size
		switch h.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			content = sum(data)
			contents[name] = content
			headers[name] = h
		case tar.TypeLink:
			content, size = contents[h.Linkname], headers[h.Linkname].Size
			groups[h.Linkname] = append(groups[h.Linkname], name)
		}
		xa := map[string][]byte{}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xa[name] = []byte(v)
			}
		}
		lines = append(lines, entryLine(name, typ, uint32(h.Mode), h.ModTime, size, content)+xattrLine(xa))
	}
	for first, g := range groups {
		lines = append(lines, "links "+first+" "+strings.Join(g, " "))
	}
	return digest(lines)
}

// export restores a snapshot as a tar.
func export(ctx context.Context, r *Repo, s *Snapshot) ([]byte, error) {
	rd, err := r.NewReader(ctx)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = rd.Export(ctx, s, &buf)
	return buf.Bytes(), err
}

// randomBytes is n bytes of a seeded random stream (incompressible).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func nodeFile() tree.Node {
	return tree.Node{Mode: 0o644, MTime: time.Unix(1700000000, 0)}
}

type sinkFunc func(p string)

func (f sinkFunc) Entry(ctx context.Context, p string, n *tree.Node, content io.Reader) error {
	f(p)
	if content != nil {
		_, err := io.Copy(io.Discard, content)
		return err
	}
	return nil
}

// xattrs reads a file's extended attributes (not following symbolic links).
func xattrs(p string) (map[string][]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil, nil // none, or not supported here
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("%s: xattr %s: %w", p, name, err)
		}
		out[name] = v[:m]
	}
	return out, nil
}

func xattrLine(x map[string][]byte) string {
	var parts []string
	for k, v := range x {
		parts = append(parts, k+"="+hex.EncodeToString(v))
	}
	slices.Sort(parts)
	return " xattrs[" + strings.Join(parts, ",") + "]"
}
