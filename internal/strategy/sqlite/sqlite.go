// Package sqlite is the SQLite strategy: one database file copied online with the sqlite3
// shell's .backup (or with the container stopped) and swapped in whole on restore; verify
// counts every table's rows and runs PRAGMA integrity_check.
package sqlite

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
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
)

// Strategy backs up one SQLite database file, whose path must be given: detection proposes
// candidates but never picks one. When the container has the sqlite3 shell and is running,
// the copy is made online with ".backup" (safe with WAL and concurrent writers) to a unique
// temporary file beside the database, which is always removed. Otherwise the container is
// stopped, the database and its -wal are copied through the archive API, and it is started
// again; the run's log says so.
//
// The artifact is a tar holding the database file (and its -wal in the stopped case).
// Restore stops the container, writes the database, replaces -wal, -shm and -journal with
// empty files so that nothing stale is replayed over it, and starts the container again.
type Strategy struct {
	Path string
	Log  *slog.Logger

	count *discardCount // what NewCount gave the pipeline: the row counts go there
}

// sqliteBusyTimeout is how long the online copy waits for a lock the application holds.
const sqliteBusyTimeout = 30 * time.Second

// Name returns "sqlite".
func (s *Strategy) Name() string { return "sqlite" }

// Extension returns "sqlite.tar".
func (s *Strategy) Extension() string { return "sqlite.tar" }

func (s *Strategy) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Strategy) check() error {
	if s.Path == "" {
		return fmt.Errorf("the sqlite strategy needs the database file: pass --database /path/in/container/app.db (docker backup detect lists candidates)")
	}
	if !strings.HasPrefix(s.Path, "/") || path.Clean(s.Path) != s.Path {
		return fmt.Errorf("database path %q must be a clean absolute path inside the container", s.Path)
	}
	return nil
}

// Backup writes a tar of a consistent copy of the database to w.
func (s *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if err := s.check(); err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	base := path.Base(s.Path)
	tw := tar.NewWriter(w)
	src := strategy.Source{"path": s.Path}
	if c.Running {
		if v, err := c.Output(ctx, "sqlite3", "-version"); err == nil {
			src["method"], src["sqlite_version"] = "online .backup", strings.Fields(v + " ?")[0]
			if err := s.onlineCopy(ctx, c, tw, base); err != nil {
				return nil, err
			}
			return src, strategy.StepErr(c, "copy", tw.Close())
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
		return nil, strategy.StepErr(c, "copy", err)
	}
	return src, strategy.StepErr(c, "copy", tw.Close())
}

func (s *Strategy) onlineCopy(ctx context.Context, c *containers.Container, tw *tar.Writer, base string) error {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := path.Join(path.Dir(s.Path), ".docker-backup-"+hex.EncodeToString(b)+".sqlite")
	defer func() {
		if err := c.RemoveTemp(ctx, tmp); err != nil {
			s.log().Warn("could not remove the temporary copy", "path", tmp, "error", err)
		}
		// Counting its rows opened the copy: a WAL database leaves its companions.
		for _, companion := range []string{tmp + "-wal", tmp + "-shm"} {
			_ = c.RemoveTemp(ctx, companion)
		}
	}()
	// A busy timeout: the application's writers hold the lock for moments at a time.
	err := c.Exec(ctx, containers.ExecSpec{Cmd: []string{"sqlite3", "-cmd", fmt.Sprintf(".timeout %d", sqliteBusyTimeout.Milliseconds()),
		s.Path, ".backup '" + strings.ReplaceAll(tmp, "'", "''") + "'"}})
	if err != nil {
		return strategy.StepErr(c, "dump", err)
	}
	if s.count != nil {
		if contents, err := s.countRows(ctx, c, tmp); err != nil {
			s.log().Warn("could not count the rows of the copy: verify will not compare them", "error", err)
		} else {
			s.count.contents = contents
		}
	}
	return strategy.StepErr(c, "copy", copyEntry(ctx, c, tmp, base, tw))
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

// Restore swaps the database in with the container stopped. The database file must be inside
// a writable volume or bind mount of the container. The backup's files are written beside
// the live ones under temporary names; only once the whole artifact has been read and
// verified are the -wal, -shm and -journal companions replaced (with the backup's WAL, or
// empty) and the new database linked over the old one — all in one archive the Engine
// extracts in a moment. A restore cut before that point leaves the live database untouched.
func (s *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	if s.Path == "" {
		s.Path = data.Source["path"]
	}
	if err := s.check(); err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	if err := strategy.CheckConfined(ctx, c, s.Path, data.Allowed, "the database file"); err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	dir, base := path.Dir(s.Path), path.Base(s.Path)
	srcBase := path.Base(data.Source["path"]) // entries are named after the backed-up file
	if data.Source["path"] == "" {
		srcBase = base
	}
	temp := func(name string) string { return "." + name + strategy.RestoreSuffix }
	var leftovers []string
	err := c.WhileStopped(ctx, s.log(), func(ctx context.Context) error {
		tr := tar.NewReader(data)
		var uid, gid int
		haveWAL, done := false, false
		var swap []containers.File
		next := func() (*containers.File, error) {
			if !done {
				hdr, err := tr.Next()
				switch {
				case errors.Is(err, io.EOF):
					done = true
				case err != nil:
					return nil, fmt.Errorf("reading the backup: %w", err)
				case hdr.Name != srcBase && hdr.Name != srcBase+"-wal":
					return nil, fmt.Errorf("unexpected entry %q in a backup of %s", hdr.Name, data.Source["path"])
				default:
					name := base
					if hdr.Name == srcBase {
						uid, gid = hdr.Uid, hdr.Gid
					} else {
						name, haveWAL = base+"-wal", true
					}
					leftovers = append(leftovers, path.Join(dir, temp(name)))
					return &containers.File{Name: temp(name), Content: tr, Size: hdr.Size, Mode: hdr.Mode &^ (tarpolicy.ModeSetUID | tarpolicy.ModeSetGID), UID: hdr.Uid, GID: hdr.Gid}, nil
				}
			}
			if swap == nil {
				// The artifact is verified to its last byte before anything live is touched.
				if err := data.Drain(); err != nil {
					return nil, err
				}
				empty := func(name string) containers.File {
					return containers.File{Name: name, Content: strings.NewReader(""), Mode: 0o644, UID: uid, GID: gid}
				}
				// Companions first (no stale WAL frames, index or hot journal may meet the
				// new database), then the database; then the temporary names are emptied.
				swap = append(swap, empty(base+"-shm"), empty(base+"-journal"))
				if haveWAL {
					swap = append(swap, containers.File{Name: base + "-wal", Link: temp(base + "-wal")}, empty(temp(base+"-wal")))
				} else {
					swap = append(swap, empty(base+"-wal"))
				}
				swap = append(swap, containers.File{Name: base, Link: temp(base)}, empty(temp(base)))
			}
			if len(swap) == 0 {
				return nil, nil
			}
			f := swap[0]
			swap = swap[1:]
			if len(swap) == 0 {
				swap = []containers.File{} // not nil: the swap is written
			}
			return &f, nil
		}
		return c.WriteStream(ctx, dir, next)
	})
	if err == nil {
		c.RemoveLeftover(ctx, leftovers...)
	}
	return strategy.StepErr(c, "restore", err)
}

// Interrupted: the live database is only replaced once the new one is complete and verified.
func (s *Strategy) Interrupted() string { return "" }

// Check reads the backup: the database file (an SQLite file), optionally its WAL, nothing
// else; and it must be inside a writable volume or bind mount.
func (s *Strategy) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	p := s.Path
	if p == "" {
		p = data.Source["path"]
	}
	if err := (&Strategy{Path: p}).check(); err != nil {
		return err
	}
	if err := strategy.CheckConfined(ctx, c, p, data.Allowed, "the database file"); err != nil {
		return err
	}
	base := path.Base(data.Source["path"])
	if data.Source["path"] == "" {
		base = path.Base(p)
	}
	tr := tar.NewReader(data)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if i == 0 {
				return fmt.Errorf("the backup holds no database file")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the backup: %w", err)
		}
		switch {
		case hdr.Typeflag != tar.TypeReg:
			return fmt.Errorf("the backup's entry %q is not a regular file", hdr.Name)
		case i == 0 && hdr.Name == base:
			head := make([]byte, 16)
			if _, err := io.ReadFull(tr, head); err != nil || string(head) != "SQLite format 3\x00" {
				return fmt.Errorf("the backup's %s is not an SQLite database (no SQLite header)", hdr.Name)
			}
		case i == 1 && hdr.Name == base+"-wal":
		default:
			return fmt.Errorf("unexpected entry %q in a backup of %s", hdr.Name, data.Source["path"])
		}
	}
}
