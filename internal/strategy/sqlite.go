package strategy

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/containers"
)

// SQLite backs up one SQLite database file, whose path must be given: detection proposes
// candidates but never picks one. When the container has the sqlite3 shell and is running,
// the copy is made online with ".backup" (safe with WAL and concurrent writers) to a unique
// temporary file beside the database, which is always removed. Otherwise the container is
// stopped, the database and its -wal are copied through the archive API, and it is started
// again; the run's log says so.
//
// The artifact is a tar holding the database file (and its -wal in the stopped case).
// Restore stops the container, writes the database, replaces -wal, -shm and -journal with
// empty files so that nothing stale is replayed over it, and starts the container again.
type SQLite struct {
	Path string
	Log  *slog.Logger
}

// sqliteBusyTimeout is how long the online copy waits for a lock the application holds.
const sqliteBusyTimeout = 30 * time.Second

// Name returns "sqlite".
func (s *SQLite) Name() string { return "sqlite" }

// Extension returns "sqlite.tar".
func (s *SQLite) Extension() string { return "sqlite.tar" }

func (s *SQLite) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *SQLite) check() error {
	if s.Path == "" {
		return fmt.Errorf("the sqlite strategy needs the database file: pass --database /path/in/container/app.db (docker backup detect lists candidates)")
	}
	if !strings.HasPrefix(s.Path, "/") || path.Clean(s.Path) != s.Path {
		return fmt.Errorf("database path %q must be a clean absolute path inside the container", s.Path)
	}
	return nil
}

// Backup writes a tar of a consistent copy of the database to w.
func (s *SQLite) Backup(ctx context.Context, c *containers.Container, w io.Writer) (Source, error) {
	if err := s.check(); err != nil {
		return nil, stepErr(c, "dump", err)
	}
	base := path.Base(s.Path)
	tw := tar.NewWriter(w)
	src := Source{"path": s.Path}
	if c.Running {
		if v, err := c.Output(ctx, "sqlite3", "-version"); err == nil {
			src["method"], src["sqlite_version"] = "online .backup", strings.Fields(v + " ?")[0]
			if err := s.onlineCopy(ctx, c, tw, base); err != nil {
				return nil, err
			}
			return src, stepErr(c, "copy", tw.Close())
		}
	}
	src["method"] = "stopped copy"
	s.log().Info("the container has no sqlite3 shell (or is stopped): copying the database with the container stopped", "container", c.Name)
	err := c.WhileStopped(ctx, s.log(), func(ctx context.Context) error {
		if err := copyEntry(ctx, c, s.Path, base, tw); err != nil {
			return err
		}
		err := copyEntry(ctx, c, s.Path+"-wal", base+"-wal", tw)
		if isNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, stepErr(c, "copy", err)
	}
	return src, stepErr(c, "copy", tw.Close())
}

func (s *SQLite) onlineCopy(ctx context.Context, c *containers.Container, tw *tar.Writer, base string) error {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := path.Join(path.Dir(s.Path), ".docker-backup-"+hex.EncodeToString(b)+".sqlite")
	defer func() {
		if err := c.RemoveTemp(ctx, tmp); err != nil {
			s.log().Warn("could not remove the temporary copy", "path", tmp, "error", err)
		}
	}()
	// A busy timeout: the application's writers hold the lock for moments at a time.
	err := c.Exec(ctx, containers.ExecSpec{Cmd: []string{"sqlite3", "-cmd", fmt.Sprintf(".timeout %d", sqliteBusyTimeout.Milliseconds()),
		s.Path, ".backup '" + strings.ReplaceAll(tmp, "'", "''") + "'"}})
	if err != nil {
		return stepErr(c, "dump", err)
	}
	return stepErr(c, "copy", copyEntry(ctx, c, tmp, base, tw))
}

// copyEntry appends the file at p in the container to tw under name, with its metadata.
func copyEntry(ctx context.Context, c *containers.Container, p, name string, tw *tar.Writer) error {
	f, hdr, err := c.OpenFile(ctx, p)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Name = name
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func isNotFound(err error) bool {
	return err != nil && (cerrdefs.IsNotFound(err) || errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "No such container:path"))
}

// Restore swaps the database in with the container stopped.
func (s *SQLite) Restore(ctx context.Context, c *containers.Container, data Data) error {
	if s.Path == "" {
		s.Path = data.Source["path"]
	}
	if err := s.check(); err != nil {
		return stepErr(c, "restore", err)
	}
	base := path.Base(s.Path)
	err := c.WhileStopped(ctx, s.log(), func(ctx context.Context) error {
		tr := tar.NewReader(data)
		var files []containers.File
		var uid, gid int
		haveWAL := false
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading the backup: %w", err)
			}
			if hdr.Name != base && hdr.Name != base+"-wal" {
				return fmt.Errorf("unexpected entry %q in a backup of %s", hdr.Name, s.Path)
			}
			if hdr.Name == base {
				uid, gid = hdr.Uid, hdr.Gid
			} else {
				haveWAL = true
			}
			// The archive is read once: the entries are written in order, streaming.
			if err := c.WriteFiles(ctx, path.Dir(s.Path), containers.File{Name: path.Base(s.Path) + strings.TrimPrefix(hdr.Name, base),
				Content: tr, Size: hdr.Size, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid}); err != nil {
				return err
			}
		}
		// Empty companions: no stale WAL frames, index or hot journal can touch the database.
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			if suffix == "-wal" && haveWAL {
				continue
			}
			files = append(files, containers.File{Name: base + suffix, Content: strings.NewReader(""), Mode: 0o644, UID: uid, GID: gid})
		}
		return c.WriteFiles(ctx, path.Dir(s.Path), files...)
	})
	return stepErr(c, "restore", err)
}
