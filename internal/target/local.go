package target

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/docker-backup/docker-backup/internal/writeback"
)

// Local keeps objects as files under a directory. Files are written to a hidden temporary
// name, fsynced, then linked into place, so a crash never leaves a complete-looking file.
// Files are 0600 and directories 0700. All access goes through os.Root, so neither keys nor
// symbolic links inside the directory can reach outside it.
type Local struct {
	dir string
}

// TempMarker is part of every temporary file's name.
const TempMarker = ".tmp-"

// NewLocal returns a target for dir, creating it (0700) if needed.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create backup directory %s: %w", abs, err)
	}
	return &Local{dir: abs}, nil
}

// String returns the directory.
func (l *Local) String() string { return l.dir }

// Dir returns the directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) open() (*os.Root, error) {
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return nil, fmt.Errorf("opening backup directory %s: %w", l.dir, err)
	}
	return root, nil
}

// Put writes r to key atomically.
func (l *Local) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	pf, err := l.Create(ctx, key)
	if err != nil {
		return 0, err
	}
	// Written back while it streams (not all at the fsync of Publish): the disk works beside
	// the compression instead of after it.
	n, err := io.CopyBuffer(pf, WithContext(ctx, r), make([]byte, 1<<20))
	if err != nil {
		pf.Discard()
		return n, fmt.Errorf("writing %s: %w", filepath.Join(l.dir, key), err)
	}
	return pf.Publish()
}

// PendingFile is an object being written: a hidden temporary file in the target's directory,
// visible under its key only once Publish made it durable. Whoever holds its descriptor may
// write it (a worker container, given the descriptor over a unix socket).
type PendingFile struct {
	root    *os.Root
	dir     string // of key, in the target
	tmp     string // the temporary file's path in the target
	key     string
	display string // the object's full path, for messages
	f       *os.File
	wb      *writeback.Writer
}

// Create starts the object at key: write it through the returned file, then Publish it or
// Discard it.
func (l *Local) Create(ctx context.Context, key string) (*PendingFile, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	root, err := l.open()
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(key)
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			root.Close()
			return nil, fmt.Errorf("creating %s in %s: %w", dir, l.dir, err)
		}
	}
	tmp := path.Join(dir, "."+base+TempMarker+RandomSuffix())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("creating a file in %s: %w", filepath.Join(l.dir, dir), err)
	}
	return &PendingFile{root: root, dir: dir, tmp: tmp, key: key, display: filepath.Join(l.dir, key), f: f, wb: writeback.New(f)}, nil
}

// File is the temporary file, open for writing.
func (p *PendingFile) File() *os.File { return p.f }

// Write appends to the file, starting its write-back as it goes.
func (p *PendingFile) Write(b []byte) (int, error) { return p.wb.Write(b) }

// Publish makes the file durable (fsync) and links it under its key; it never replaces an
// existing object. On failure nothing is left. It returns the object's size.
func (p *PendingFile) Publish() (n int64, err error) {
	defer func() {
		if err != nil {
			p.Discard()
		} else {
			p.root.Close()
		}
	}()
	info, err := p.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", p.display, err)
	}
	n = info.Size()
	if err = p.f.Sync(); err != nil {
		return n, fmt.Errorf("syncing %s: %w", p.display, err)
	}
	err = p.f.Close()
	p.f = nil
	if err != nil {
		return n, fmt.Errorf("closing %s: %w", p.display, err)
	}
	// Link, unlike rename, refuses to replace an existing object.
	if err = p.root.Link(p.tmp, p.key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return n, fmt.Errorf("%s: %w", p.display, ErrExist)
		}
		return n, fmt.Errorf("publishing %s: %w", p.display, err)
	}
	if err = p.root.Remove(p.tmp); err != nil {
		p.tmp = ""
		_ = p.root.Remove(p.key)
		return n, fmt.Errorf("removing temporary file: %w", err)
	}
	p.tmp = ""
	if err = syncDir(p.root, p.dir); err != nil {
		// Not known to be durable: not published either.
		_ = p.root.Remove(p.key)
	}
	return n, err
}

// Discard removes the temporary file.
func (p *PendingFile) Discard() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	if p.tmp != "" {
		_ = p.root.Remove(p.tmp)
		p.tmp = ""
	}
	p.root.Close()
}

// Get opens the file at key. Only a regular file is read: the open does not wait (a named
// pipe put there would hang it until someone writes) and what was opened is checked first.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	root, err := l.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	name := filepath.Join(l.dir, key)
	f, err := root.OpenFile(key, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", name, ErrNotExist)
		}
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("it is not a regular file but %s: not a backup this tool wrote", FileKind(info.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s (key %q): %w", name, key, err)
	}
	return f, nil
}

// FileKind names the type of a file that is not a regular one.
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}

// List walks the directory for files under prefix, skipping temporary files. Only the
// directory the prefix names is walked, not the whole target.
func (l *Local) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		root, err := l.open()
		if err != nil {
			yield(Object{}, err)
			return
		}
		defer root.Close()
		start := "."
		if i := strings.LastIndex(prefix, "/"); i > 0 {
			start = prefix[:i]
			if ValidateKey(start) != nil {
				yield(Object{}, fmt.Errorf("listing %s: prefix %q is not a clean relative path", l.dir, prefix))
				return
			}
		}
		w := &localWalk{ctx: ctx, root: root, prefix: prefix, yield: yield}
		if err := w.dir(start); err != nil && !errors.Is(err, errStopped) {
			yield(Object{}, fmt.Errorf("listing %s: %w", l.dir, err))
		}
	}
}

var errStopped = errors.New("stopped")

// lexicalOrder sorts a directory's names in the order of the keys below them, as S3 lists
// keys: a directory's keys are its name and "/" then theirs, so "db-x" comes before "db/y"
// though "db" sorts before "db-x". Only names another one starts with, followed by a byte
// before "/", are looked at (to tell directories).
func lexicalOrder(r *os.Root, names []string) []string {
	slices.Sort(names)
	keys := map[string]string{}
	for i, name := range names {
		if i+1 < len(names) && strings.HasPrefix(names[i+1], name) && names[i+1][len(name)] < '/' {
			if info, err := r.Lstat(name); err == nil && info.IsDir() {
				keys[name] = name + "/"
			}
		}
	}
	if len(keys) == 0 {
		return names
	}
	key := func(n string) string {
		if k, ok := keys[n]; ok {
			return k
		}
		return n
	}
	slices.SortStableFunc(names, func(a, b string) int { return strings.Compare(key(a), key(b)) })
	return names
}

// localWalk lists a directory tree in lexical order within each directory, holding only the
// names of the directories it is in (not their entries' details).
type localWalk struct {
	ctx    context.Context
	root   *os.Root
	prefix string
	yield  func(Object, error) bool
}

func (w *localWalk) dir(dir string) error {
	r, err := w.root.OpenRoot(dir)
	if err != nil {
		if dir != "." && errors.Is(err, fs.ErrNotExist) {
			return nil // nothing under the prefix
		}
		return err
	}
	defer r.Close()
	f, err := r.Open(".")
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, name := range lexicalOrder(r, names) {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(name, ".") {
			continue // temporary files, hidden directories
		}
		p := name
		if dir != "." {
			p = dir + "/" + name
		}
		if !strings.HasPrefix(p, w.prefix) && !strings.HasPrefix(w.prefix, p+"/") {
			continue
		}
		info, err := r.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := w.dir(p); err != nil {
				return err
			}
		case info.Mode().IsRegular() && strings.HasPrefix(p, w.prefix):
			if !w.yield(Object{Key: p, Size: info.Size(), ModTime: info.ModTime()}, nil) {
				return errStopped
			}
		}
	}
	return nil
}

// Pin opens the file at key once: every Open reads that same file, even if the name is
// replaced meanwhile.
func (l *Local) Pin(ctx context.Context, key string) (Pinned, error) {
	rc, err := l.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	f := rc.(*os.File) // a regular file (Get checked)
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(l.dir, key), err)
	}
	return &pinnedFile{f: f, size: info.Size()}, nil
}

type pinnedFile struct {
	f    *os.File
	size int64
}

func (p *pinnedFile) Size() int64 { return p.size }

// File is the pinned file (see PinnedFile).
func (p *pinnedFile) File() *os.File { return p.f }
func (p *pinnedFile) Close() error   { return p.f.Close() }
func (p *pinnedFile) Open(ctx context.Context) (io.ReadCloser, error) {
	return io.NopCloser(WithContext(ctx, io.NewSectionReader(p.f, 0, p.size))), nil
}

// Delete removes the file at key.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	root, err := l.open()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", filepath.Join(l.dir, key), err)
	}
	return nil
}

func syncDir(root *os.Root, dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

func RandomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WithContext returns a reader that stops a copy when ctx is cancelled.
func WithContext(ctx context.Context, r io.Reader) io.Reader { return contextReader{ctx, r} }

// contextReader stops a copy when ctx is cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
