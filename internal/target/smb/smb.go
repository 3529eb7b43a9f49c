// Package smb keeps objects as files in a share on an SMB2/3 server (Samba, Windows, a NAS).
package smb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	smb2 "github.com/hirochachacha/go-smb2"
)

// Target keeps objects as files in a directory of an SMB share. A file is written to a hidden
// temporary name beside its key, flushed, then renamed into place with SET_INFO
// FileRenameInformation and ReplaceIfExists=0: the server refuses to replace an existing
// file. One connection (TCP, session, tree connect) is shared by the target's operations,
// dialled on first use and closed once idle.
type Target struct {
	cfg Config

	dialMu sync.Mutex // one dial at a time
	mu     sync.Mutex
	conn   *smbConn // nil: none yet, or closed
}

// New returns a target for cfg. No connection is made yet; the password is read from the
// environment at each login.
func New(cfg Config) (*Target, error) {
	if cfg.User == "" || cfg.Host == "" || cfg.Share == "" {
		return nil, fmt.Errorf("an SMB target needs a user, a host and a share: %s", smbForm)
	}
	if cfg.Port == 0 {
		cfg.Port = 445
	}
	return &Target{cfg: cfg}, nil
}

// String is the target's URL: no secret is in it.
func (s *Target) String() string { return s.cfg.String() }

// Config returns the target's configuration.
func (s *Target) Config() Config { return s.cfg }

// remote is the share's path of key (or of a directory of keys), with forward slashes (the
// library turns them into backslashes); "" is the share's root.
func (s *Target) remote(key string) string {
	switch {
	case key == "" || key == ".":
		return s.cfg.Path
	case s.cfg.Path == "":
		return key
	}
	return s.cfg.Path + "/" + key
}

// where names key for messages: the target and the key.
func (s *Target) where(key string) string { return key + " in " + s.String() }

// Put writes r to a temporary file beside key and renames it into place without replacing:
// an existing object is refused (the key looked at first, and the rename itself refuses). A
// failed or cancelled Put removes its temporary file, on a new connection if the old one
// died; one it cannot reach is swept later (RemoveIncomplete, RemoveStale).
func (s *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	dst := s.remote(key)
	dir := path.Dir(dst)
	err := s.with(ctx, func(sh *smb2.Share) error {
		if _, err := sh.Stat(dst); err == nil {
			return fmt.Errorf("%s: %w", s.where(key), target.ErrExist)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return mkdirAll(sh, dir)
	})
	if errors.Is(err, target.ErrExist) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", s.where(key), s.explain(err))
	}
	c, err := s.acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("storing %s: %w", s.where(key), err)
	}
	defer s.release(c)
	tmp := path.Join(dir, "."+path.Base(dst)+target.TempMarker+target.RandomSuffix())
	n, err := s.writeTemporary(ctx, c, tmp, r)
	if err == nil {
		err = ctx.Err() // cancelled once the stream was whole: not published either
	}
	if err == nil {
		err = s.rename(ctx, c, tmp, dst, key)
	} else {
		err = fmt.Errorf("storing %s: %w", s.where(key), err)
	}
	if err != nil {
		s.removeTemporary(ctx, c, tmp)
		return n, err
	}
	return n, nil
}

// rename moves the temporary file into place; the server refuses an existing name.
func (s *Target) rename(ctx context.Context, c *smbConn, tmp, dst, key string) error {
	rctx, cancel := context.WithTimeout(ctx, smbRequestTimeout)
	defer cancel()
	err := c.share.WithContext(rctx).Rename(tmp, dst)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%s: %w (written meanwhile: the server refused to rename onto it)", s.where(key), target.ErrExist)
	}
	return fmt.Errorf("storing %s: renaming %s into place: %w", s.where(key), tmp, s.explain(err))
}

// writeTemporary creates tmp (refusing an existing one), streams r into it (one smbBuffer
// held, each write watched), flushes it to the server's disk and checks its size.
func (s *Target) writeTemporary(ctx context.Context, c *smbConn, tmp string, r io.Reader) (int64, error) {
	sh := c.share.WithContext(ctx)
	f, err := sh.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", tmp, s.explain(err))
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	src := &sourceReader{r: target.WithContext(ctx, r)}
	n, err := io.CopyBuffer(watchedWriter{f, s, c}, src, make([]byte, smbBuffer))
	if err != nil {
		if src.err != nil {
			return n, src.err // the backup's stream failed (or was cancelled), not the server
		}
		return n, s.explain(err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("flushing: %w", s.explain(err))
	}
	info, err := f.Stat()
	if err != nil {
		return n, s.explain(err)
	}
	if info.Size() != n {
		return n, fmt.Errorf("the server kept %d of the %d bytes sent: %w", info.Size(), n, s.explain(io.ErrShortWrite))
	}
	err = f.Close()
	f = nil
	if err != nil {
		return n, fmt.Errorf("closing: %w", s.explain(err))
	}
	return n, nil
}

// smbBuffer is how much of the stream an upload holds: one write of up to 1 MiB (the library
// splits it into the server's largest writes).
const smbBuffer = 1 << 20

// watchedWriter writes to a file, each write bounded by smbRequestTimeout.
type watchedWriter struct {
	f *smb2.File
	s *Target
	c *smbConn
}

func (w watchedWriter) Write(p []byte) (int, error) {
	stop := w.s.watch(w.c)
	defer stop()
	return w.f.Write(p)
}

// watch bounds one read or write of a file: a server that keeps the connection but does not
// answer for smbRequestTimeout (hung, or frozen) has its connection closed, failing what
// waits on it. It returns the function that ends the watch.
func (s *Target) watch(c *smbConn) func() {
	t := time.AfterFunc(smbRequestTimeout, func() { s.drop(c) })
	return func() { t.Stop() }
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

// removeTemporary removes a failed Put's temporary file. If the connection died with the
// upload, it is tried again on a new one for up to a minute; what still cannot be removed is
// swept later.
func (s *Target) removeTemporary(ctx context.Context, c *smbConn, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := c.share.WithContext(ctx).Remove(tmp)
	if err == nil || errors.Is(err, os.ErrNotExist) || !lostConnection(err) {
		return
	}
	s.drop(c)
	_ = s.with(ctx, func(sh *smb2.Share) error {
		if err := sh.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
}

// mkdirAll makes dir and its parents.
func mkdirAll(sh *smb2.Share, dir string) error {
	if dir == "." || dir == "/" || dir == "" {
		return nil
	}
	info, err := sh.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s on the server is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := mkdirAll(sh, path.Dir(dir)); err != nil {
		return err
	}
	if err := sh.Mkdir(dir, 0o700); err != nil {
		if info, serr := sh.Stat(dir); serr == nil && info.IsDir() {
			return nil // made meanwhile by another Put
		}
		return fmt.Errorf("creating the directory %s: %w", dir, err)
	}
	return nil
}

// Get opens the file at key.
func (s *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	rc, _, err := s.open(ctx, key)
	return rc, err
}

// open opens the file at key for reading, its requests bound to ctx; the reader holds the
// connection until it is closed. A connection found lost is replaced once.
func (s *Target) open(ctx context.Context, key string) (*smbReader, int64, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.acquire(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", s.where(key), err)
		}
		f, size, err := openRegular(c.share.WithContext(ctx), s.remote(key))
		if err == nil {
			return &smbReader{s: s, c: c, f: f, key: key, r: bufio.NewReaderSize(target.WithContext(ctx, f), readBuffer(size))}, size, nil
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

// openRegular opens a regular file (not a directory) and returns its size.
func openRegular(sh *smb2.Share, name string) (*smb2.File, int64, error) {
	f, err := sh.Open(name)
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

// readBuffer is how much one read asks for at once: up to 1 MiB, no more than the file.
func readBuffer(size int64) int { return int(min(max(size, 4096), 1<<20)) }

// smbReader reads a file on the server.
type smbReader struct {
	s    *Target
	c    *smbConn
	f    *smb2.File
	key  string
	r    io.Reader
	once sync.Once
}

func (r *smbReader) Read(p []byte) (int, error) {
	stop := r.s.watch(r.c)
	n, err := r.r.Read(p)
	stop()
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", r.s.where(r.key), r.s.explain(err))
	}
	return n, err
}

func (r *smbReader) Close() error {
	var err error
	r.once.Do(func() {
		err = r.f.Close()
		r.s.release(r.c)
	})
	return err
}

// Pin notes the file at key as it is now: its size, its creation, last write and change time
// (the server's, in 100 ns). Every Open opens the file anew, checks those through the new
// handle and reads through it, or fails with target.ErrChanged: a file deleted and put anew
// is a new file with a new creation time. A file rewritten in place with its times set back
// shows none of this (Samba's change time is its write time): every read to the end is also
// checked against the first one's digest (target.SameBytes). (A pin does not hold a handle open: the library
// opens files without FILE_SHARE_DELETE, so a held handle would make the server refuse the
// retention's deletes for as long as the pin lasts.)
func (s *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	r, _, err := s.open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	id, err := identify(r.f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.where(key), s.explain(err))
	}
	return &smbPinned{s: s, key: key, id: id}, nil
}

// fileID is what tells one file from another put under the same name, or the same file
// rewritten: its size, creation and last write time (which a writer can set back: SET_INFO,
// touch) and its change time (a file system's ctime on a server that reports it; Samba
// reports the write time there).
type fileID struct {
	size                     int64
	created, writen, changed time.Time
}

func identify(f *smb2.File) (fileID, error) {
	info, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	st, ok := info.Sys().(*smb2.FileStat)
	if !ok {
		return fileID{}, fmt.Errorf("the server's file information has no times")
	}
	return fileID{size: st.EndOfFile, created: st.CreationTime, writen: st.LastWriteTime, changed: st.ChangeTime}, nil
}

// equal compares the times as instants (time.Time's == also compares locations).
func (a fileID) equal(b fileID) bool {
	return a.size == b.size && a.created.Equal(b.created) && a.writen.Equal(b.writen) && a.changed.Equal(b.changed)
}

type smbPinned struct {
	s    *Target
	key  string
	id   fileID
	same target.SameBytes // Samba reports the ctime as its write time: a rewrite in place shows at the read's end
}

func (p *smbPinned) Size() int64  { return p.id.size }
func (p *smbPinned) Close() error { return nil }
func (p *smbPinned) Open(ctx context.Context) (io.ReadCloser, error) {
	r, _, err := p.s.open(ctx, p.key)
	if errors.Is(err, target.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (it was deleted)", p.s.where(p.key), target.ErrChanged)
	}
	if err != nil {
		return nil, err
	}
	id, err := identify(r.f)
	if err == nil && !id.equal(p.id) {
		err = fmt.Errorf("%s: %w (created %s, %d bytes; pinned: created %s, %d bytes)", p.s.where(p.key), target.ErrChanged,
			id.created.UTC().Format(time.RFC3339Nano), id.size, p.id.created.UTC().Format(time.RFC3339Nano), p.id.size)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return p.same.Reader(r, p.s.where(p.key)), nil
}

// Delete removes the file at key.
func (s *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	err := s.with(ctx, func(sh *smb2.Share) error { return sh.Remove(s.remote(key)) })
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", s.where(key), s.explain(err))
	}
	return nil
}

// Requirement is what the user needs on the share for an operation of target.Check.
func (s *Target) Requirement(operation string) string {
	need := map[string]string{
		"write":  "to create directories and files in the share's directory, and to rename them there (read/write access to the share)",
		"list":   "to list the share's directories",
		"read":   "to read the files it wrote",
		"delete": "to delete the files it wrote",
	}[operation]
	if need == "" {
		return ""
	}
	return "the user " + s.cfg.account() + " needs " + need
}

// explain says which of authentication, permission, space or network an SMB error is.
func (s *Target) explain(err error) error {
	switch code := ntStatus(err); {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied: the server does not let %q do this there: %w", s.cfg.account(), err)
	case code == statusDiskFull || code == statusQuotaExceeded:
		return fmt.Errorf("no space left on the server (disk full or quota exceeded): %w", err)
	case code == statusSharingViolation:
		return fmt.Errorf("the file is in use (open on the server by another reader, e.g. a restore): %w", err)
	case lostConnection(err):
		return fmt.Errorf("the connection to %s was lost: %w", s.cfg.address(), err)
	case timedOut(err):
		return fmt.Errorf("%s did not answer in time: %w", s.cfg.address(), err)
	}
	return err
}

// timedOut tells a request that ran out of time (the library's context errors say so by
// their Timeout method, not by wrapping).
func timedOut(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// errStopped ends a walk whose consumer stopped.
var errStopped = errors.New("stopped")

// isHidden tells the names the walk skips: temporary files and hidden directories.
func isHidden(name string) bool { return strings.HasPrefix(name, ".") }
