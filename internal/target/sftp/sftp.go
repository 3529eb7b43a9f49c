package sftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	sftplib "github.com/pkg/sftp"
)

// SFTP keeps objects as files in a directory on an SSH server. A file is written to a hidden
// temporary name beside its key, synced (fsync@openssh.com, where the server has it), then
// renamed into place with SFTP's own rename, which refuses to replace an existing file. The
// server's host key is always checked against a known_hosts file before anything is sent.
// One connection is shared by the target's operations, dialled on first use and closed once
// idle.
type Target struct {
	cfg        Config
	keyFile    string // empty: ssh-agent, else ~/.ssh/id_*
	keySource  string // where keyFile was named, for messages
	knownHosts string

	dialMu sync.Mutex // one dial at a time
	mu     sync.Mutex
	conn   *sftpConn // nil: none yet, or closed
}

// New returns a target for cfg, reading the key file's and the known hosts file's names
// from the environment where cfg leaves them empty. No connection is made yet.
func New(cfg Config) (*Target, error) {
	if cfg.User == "" || cfg.Host == "" {
		return nil, fmt.Errorf("an SFTP target needs a user and a host: %s", sftpForm)
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	s := &Target{cfg: cfg, keyFile: cfg.KeyFile, keySource: "the key file given", knownHosts: cfg.KnownHosts}
	var sets []string
	if cfg.CredentialsEnv != "" {
		sets = append(sets, cfg.CredentialsEnv+"_SFTP_")
	}
	sets = append(sets, "DOCKER_BACKUP_SFTP_")
	for _, set := range sets {
		if v := strings.TrimSpace(os.Getenv(set + "KEY_FILE")); s.keyFile == "" && v != "" {
			s.keyFile, s.keySource = v, "the key file "+set+"KEY_FILE names"
		}
		if v := strings.TrimSpace(os.Getenv(set + "KNOWN_HOSTS")); s.knownHosts == "" && v != "" {
			s.knownHosts = v
		}
	}
	if s.knownHosts == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("no known hosts file to check %s's host key against: set %s (%w)", cfg.address(), EnvSFTPKnownHosts, err)
		}
		s.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	return s, nil
}

// String is the target's URL: no secret is in it.
func (s *Target) String() string { return s.cfg.String() }

// Config returns the target's configuration.
func (s *Target) Config() Config { return s.cfg }

// remote is the server's path of key (or of a directory of keys).
func (s *Target) remote(key string) string {
	switch {
	case key == "" || key == ".":
		if s.cfg.Path == "" {
			return "."
		}
		return s.cfg.Path
	case s.cfg.Path == "":
		return key
	}
	return s.cfg.Path + "/" + key
}

// where names key for messages: the target and the key.
func (s *Target) where(key string) string { return key + " in " + s.String() }

// Put writes r to a temporary file beside key and renames it into place. An existing object
// is never replaced: the key is looked at first, and the rename itself refuses (SFTP's
// rename does not overwrite; posix-rename@openssh.com, which does, is not used). The file is
// made in a hidden directory of its own, 0700 before the file is created in it: SFTP's open
// cannot give a file its mode (pkg/sftp sends none), so the file starts with the server's
// default (0644 on OpenSSH) and only then is made 0600 — no one else can reach it meanwhile.
// A failed or cancelled Put removes its temporary (see removeTemporary); one it cannot reach
// is swept later (RemoveIncomplete, RemoveStale).
func (s *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	dst := s.remote(key)
	dir := path.Dir(dst)
	err := s.with(ctx, func(c *sftplib.Client) error {
		if _, err := s.checkDirs(c, path.Dir(key), true); err != nil {
			return err
		}
		if _, err := c.Lstat(dst); err == nil {
			return fmt.Errorf("%s: %w", s.where(key), target.ErrExist)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, target.ErrExist) {
			return 0, err
		}
		return 0, fmt.Errorf("storing %s: %w", s.where(key), s.explain(err))
	}
	c, err := s.acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", s.where(key), err)
	}
	defer s.release(c)
	tmpDir := path.Join(dir, "."+path.Base(dst)+target.TempMarker+target.RandomSuffix())
	f, err := s.createPrivate(c.client, tmpDir, path.Base(dst))
	if err != nil {
		s.removeTemporary(ctx, c, tmpDir)
		return 0, fmt.Errorf("storing %s: creating a file in %s: %w", s.where(key), dir, s.explain(err))
	}
	n, err := s.write(ctx, c, f, dir, r)
	if err == nil {
		err = ctx.Err() // cancelled once the stream was whole: not published either
	}
	if err == nil {
		err = c.client.Rename(path.Join(tmpDir, path.Base(dst)), dst)
		if err != nil {
			if _, serr := c.client.Lstat(dst); serr == nil {
				err = fmt.Errorf("%s: %w", s.where(key), target.ErrExist)
			} else {
				err = fmt.Errorf("storing %s: renaming %s into place: %w", s.where(key), tmpDir, s.explain(err))
			}
		}
	} else {
		err = fmt.Errorf("storing %s: %w", s.where(key), err)
	}
	s.removeTemporary(ctx, c, tmpDir) // empty once renamed: swept by RemoveStale if left
	if err != nil {
		return n, err
	}
	return n, nil
}

// createPrivate makes the hidden directory tmpDir (0700) and the file name in it (0600),
// where the server lets modes be set.
func (s *Target) createPrivate(c *sftplib.Client, tmpDir, name string) (*sftplib.File, error) {
	if err := c.Mkdir(tmpDir); err != nil {
		return nil, err
	}
	_ = c.Chmod(tmpDir, 0o700)
	f, err := c.OpenFile(path.Join(tmpDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, err
	}
	_ = f.Chmod(0o600)
	return f, nil
}

// removeTemporary removes a Put's temporary directory and what is in it. If the connection
// died with the upload (the server's SFTP process killed, the network cut), it is tried again
// on a new one for up to a minute, as an S3 upload's abort is; what still cannot be removed
// is swept later.
func (s *Target) removeTemporary(ctx context.Context, c *sftpConn, tmpDir string) {
	err := removeTempDir(c.client, tmpDir)
	if err == nil || !lostConnection(err) {
		return
	}
	s.drop(c)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = s.with(ctx, func(c *sftplib.Client) error { return removeTempDir(c, tmpDir) })
}

// removeTempDir removes a temporary: a directory and the files in it (a link or a file
// in its place, as older releases left, is removed itself, never followed).
func removeTempDir(c *sftplib.Client, tmp string) error {
	info, err := c.Lstat(tmp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !info.IsDir():
		if err := c.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	infos, err := c.ReadDir(tmp)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, fi := range infos {
		if fi.IsDir() {
			continue // not ours: left, and the directory with it
		}
		if err := c.Remove(path.Join(tmp, fi.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := c.RemoveDirectory(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// write streams r into f (many writes in flight, one packet of r's bytes held at a time),
// syncs and closes it, and checks the server kept every byte.
func (s *Target) write(ctx context.Context, c *sftpConn, f *sftplib.File, dir string, r io.Reader) (n int64, err error) {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	src := &sourceReader{r: target.WithContext(ctx, r)}
	n, err = f.ReadFromWithConcurrency(src, 0)
	if err != nil {
		if src.err != nil {
			return n, src.err // the backup's stream failed (or was cancelled), not the server
		}
		return n, s.explainWrite(c.client, dir, err)
	}
	if _, ok := c.client.HasExtension("fsync@openssh.com"); ok {
		if err := f.Sync(); err != nil {
			return n, fmt.Errorf("syncing: %w", s.explainWrite(c.client, dir, err))
		}
	}
	info, err := f.Stat()
	if err != nil {
		return n, s.explain(err)
	}
	if info.Size() != n {
		return n, fmt.Errorf("the server kept %d of the %d bytes sent: %w", info.Size(), n, s.explainWrite(c.client, dir, errShortWrite))
	}
	err = f.Close()
	f = nil
	if err != nil {
		return n, fmt.Errorf("closing: %w", s.explainWrite(c.client, dir, err))
	}
	return n, nil
}

// sourceReader keeps the error of the stream a Put reads, to tell it from the server's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Get opens the file at key.
func (s *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	rc, _, err := s.open(ctx, key)
	return rc, err
}

// open opens the file at key for reading; the reader holds the connection until it is closed.
// A connection found lost is replaced once, as in with.
func (s *Target) open(ctx context.Context, key string) (*sftpReader, int64, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.acquire(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", s.where(key), err)
		}
		f, size, err := s.openChecked(ctx, c, key)
		if err == nil {
			return &sftpReader{s: s, c: c, f: f, key: key, r: bufio.NewReaderSize(target.WithContext(ctx, f), readBuffer(size))}, size, nil
		}
		lost := lostConnection(err)
		if lost {
			s.drop(c)
		}
		s.release(c)
		switch {
		case attempt == 0 && lost && ctx.Err() == nil:
			continue
		case errors.Is(err, os.ErrNotExist):
			return nil, 0, fmt.Errorf("%s: %w", s.where(key), target.ErrNotExist)
		}
		return nil, 0, fmt.Errorf("reading %s: %w", s.where(key), s.explain(err))
	}
}

// openRegular opens a regular file (not a directory or a device) and returns its size.
func openRegular(c *sftplib.Client, name string) (*sftplib.File, int64, error) {
	f, err := c.Open(name)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("it is not a regular file but %s: not a backup this tool wrote", target.FileKind(info.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, info.Size(), nil
}

// readBuffer is how much one read asks for at once: up to 1 MiB (32 requests in flight), no
// more than the file.
func readBuffer(size int64) int { return int(min(max(size, 4096), 1<<20)) }

// sftpReader reads a file on the server, many requests in flight per buffer.
type sftpReader struct {
	s    *Target
	c    *sftpConn
	f    *sftplib.File
	key  string
	r    io.Reader
	once sync.Once
}

func (r *sftpReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", r.s.where(r.key), r.s.explain(err))
	}
	return n, err
}

func (r *sftpReader) Close() error {
	err := r.f.Close()
	r.once.Do(func() { r.s.release(r.c) })
	return err
}

// Pin opens the file at key once: every Open reads that same file through its handle, even
// if the name is replaced or removed meanwhile (the server keeps an open file). If the
// connection is lost, Open fails rather than read another file.
func (s *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	r, size, err := s.open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &sftpPinned{r: r, size: size}, nil
}

type sftpPinned struct {
	r    *sftpReader
	size int64
}

func (p *sftpPinned) Size() int64  { return p.size }
func (p *sftpPinned) Close() error { return p.r.Close() }
func (p *sftpPinned) Open(ctx context.Context) (io.ReadCloser, error) {
	sr := io.NewSectionReader(p.r.f, 0, p.size)
	return io.NopCloser(&sftpReader{s: p.r.s, key: p.r.key, r: bufio.NewReaderSize(target.WithContext(ctx, sr), readBuffer(p.size))}), nil
}

// Delete removes the file at key.
func (s *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	err := s.with(ctx, func(c *sftplib.Client) error {
		if ok, err := s.checkDirs(c, path.Dir(key), false); !ok || err != nil {
			return err // a missing directory: nothing to delete
		}
		return c.Remove(s.remote(key))
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", s.where(key), s.explain(err))
	}
	return nil
}

// List walks the directory of prefix for files under it, as Local does: hidden names
// (temporary files) skipped, each directory's keys in lexical order, one directory's names
// held at a time per level.
func (s *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		start := ""
		if i := strings.LastIndex(prefix, "/"); i > 0 {
			start = prefix[:i]
			if target.ValidateKey(start) != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: prefix %q is not a clean relative path", s, prefix))
				return
			}
		}
		c, err := s.acquire(ctx)
		if err != nil {
			yield(target.Object{}, fmt.Errorf("listing %s: %w", s, err))
			return
		}
		defer s.release(c)
		if ok, err := s.checkDirs(c.client, start, false); err != nil {
			yield(target.Object{}, fmt.Errorf("listing %s: %w", s, s.explain(err)))
			return
		} else if !ok {
			return // nothing under the prefix
		}
		w := &sftpWalk{ctx: ctx, s: s, c: c.client, prefix: prefix, yield: yield}
		if err := w.dir(start); err != nil && !errors.Is(err, errStopped) {
			if lostConnection(err) {
				s.drop(c)
			}
			yield(target.Object{}, fmt.Errorf("listing %s: %w", s, s.explain(err)))
		}
	}
}

type sftpWalk struct {
	ctx    context.Context
	s      *Target
	c      *sftplib.Client
	prefix string
	yield  func(target.Object, error) bool
}

// sftpEntry is what the walk keeps of a directory's entry.
type sftpEntry struct {
	name    string
	dir     bool
	regular bool
	size    int64
	mtime   time.Time
}

func (w *sftpWalk) dir(dir string) error {
	infos, err := w.c.ReadDirContext(w.ctx, w.s.remote(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing under the prefix
	}
	if err != nil {
		return err
	}
	entries := make([]sftpEntry, 0, len(infos))
	for _, fi := range infos {
		if strings.HasPrefix(fi.Name(), ".") {
			continue // temporary files, hidden directories
		}
		entries = append(entries, sftpEntry{name: fi.Name(), dir: fi.IsDir(), regular: fi.Mode().IsRegular(), size: fi.Size(), mtime: fi.ModTime()})
	}
	infos = nil
	// A directory's keys are its name and "/" then theirs: sorted so, the order is S3's.
	sortKey := func(e sftpEntry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(entries, func(a, b sftpEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := e.name
		if dir != "" {
			p = dir + "/" + e.name
		}
		if !strings.HasPrefix(p, w.prefix) && !strings.HasPrefix(w.prefix, p+"/") {
			continue
		}
		switch {
		case e.dir:
			if err := w.dir(p); err != nil {
				return err
			}
		case e.regular && strings.HasPrefix(p, w.prefix):
			if !w.yield(target.Object{Key: p, Size: e.size, ModTime: e.mtime}, nil) {
				return errStopped
			}
		}
	}
	return nil
}

// RemoveIncomplete removes the temporary files of unfinished Puts of key.
func (s *Target) RemoveIncomplete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	dir, base := path.Split(key)
	_, err := s.removeTemporaries(ctx, strings.TrimSuffix(dir, "/"), func(name string, _ time.Time) bool {
		return strings.HasPrefix(name, "."+base+target.TempMarker)
	})
	return err
}

// RemoveStale removes the temporary files of Puts that never finished in the directory of
// prefix, older than before.
func (s *Target) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if err := target.ValidateKey(dir); err != nil {
		return nil, err
	}
	return s.removeTemporaries(ctx, dir, func(name string, mtime time.Time) bool {
		return strings.HasPrefix(name, ".") && strings.Contains(name, target.TempMarker) && mtime.Before(before)
	})
}

func (s *Target) removeTemporaries(ctx context.Context, dir string, match func(string, time.Time) bool) ([]string, error) {
	var removed []string
	err := s.with(ctx, func(c *sftplib.Client) error {
		if ok, err := s.checkDirs(c, dir, false); !ok || err != nil {
			return err
		}
		infos, err := c.ReadDirContext(ctx, s.remote(dir))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, fi := range infos {
			if !match(fi.Name(), fi.ModTime()) {
				continue
			}
			p := path.Join(dir, fi.Name())
			if err := removeTempDir(c, s.remote(p)); err != nil {
				return fmt.Errorf("removing %s: %w", p, err)
			}
			if !slices.Contains(removed, p) {
				removed = append(removed, p)
			}
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("removing unfinished files in %s: %w", s.where(dir), s.explain(err))
	}
	return removed, nil
}

// explain says which of permission or network an SFTP error is.
func (s *Target) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied: the server does not let %q do this there: %w", s.cfg.User, err)
	case lostConnection(err):
		return fmt.Errorf("the connection to %s was lost: %w", s.cfg.address(), err)
	}
	return err
}

var errShortWrite = errors.New("short write")

// errStopped ends a walk whose consumer stopped.
var errStopped = errors.New("stopped")

// explainWrite says what a failed write most likely was. SFTP's servers answer a full disk or
// quota with a bare "failure": the free space of the server's file system, where the server
// tells it (statvfs@openssh.com), says whether it is full.
func (s *Target) explainWrite(c *sftplib.Client, dir string, err error) error {
	var se *sftplib.StatusError
	if !errors.Is(err, errShortWrite) && (!errors.As(err, &se) || se.FxCode() != sftplib.ErrSSHFxFailure) {
		return s.explain(err)
	}
	if _, ok := c.HasExtension("statvfs@openssh.com"); ok {
		if st, serr := c.StatVFS(dir); serr == nil {
			free := st.Bavail * st.Frsize
			if free < 1<<20 {
				return fmt.Errorf("no space left on the server (%d bytes free in %s): %w", free, dir, err)
			}
			return fmt.Errorf("the server failed the write without saying why (%d MiB free in %s: a quota, or a file system that fills meanwhile?): %w", free>>20, dir, err)
		}
	}
	return fmt.Errorf("the server failed the write without saying why (a full disk or quota?): %w", err)
}

// Requirement is what the user needs on the server for an operation of target.Check.
func (s *Target) Requirement(operation string) string {
	need := map[string]string{
		"write":  "to create directories and files in the target's directory, and to rename them there",
		"list":   "to read the target's directories",
		"read":   "to read the files it wrote",
		"delete": "to remove the files it wrote",
	}[operation]
	if need == "" {
		return ""
	}
	return "the user needs " + need
}
