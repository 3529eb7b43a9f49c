package smb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	smb2 "github.com/hirochachacha/go-smb2"
)

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
		w := &smbWalk{ctx: ctx, s: s, c: c, prefix: prefix, yield: yield}
		if err := w.dir(start); err != nil && !errors.Is(err, errStopped) {
			if lostConnection(err) {
				s.drop(c)
			}
			yield(target.Object{}, fmt.Errorf("listing %s: %w", s, s.explain(err)))
		}
	}
}

type smbWalk struct {
	ctx    context.Context
	s      *Target
	c      *smbConn
	prefix string
	yield  func(target.Object, error) bool
}

// smbEntry is what the walk keeps of a directory's entry.
type smbEntry struct {
	name    string
	dir     bool
	regular bool
	size    int64
	mtime   time.Time
}

// readDir reads one directory's entries, hidden ones and links left out, within
// smbRequestTimeout.
func (w *smbWalk) readDir(dir string) ([]smbEntry, error) {
	ctx, cancel := context.WithTimeout(w.ctx, smbRequestTimeout)
	defer cancel()
	infos, err := readDir(w.c.share.WithContext(ctx), w.s.remote(dir))
	if err != nil {
		return nil, err
	}
	entries := make([]smbEntry, 0, len(infos))
	for _, fi := range infos {
		// Hidden names, and links the server marks as such (reparse points: Windows), are never
		// walked nor listed. Samba's default shows a link as what it names: see docs/targets.md.
		if isHidden(fi.Name()) || fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		entries = append(entries, smbEntry{name: fi.Name(), dir: fi.IsDir(), regular: fi.Mode().IsRegular(), size: fi.Size(), mtime: fi.ModTime()})
	}
	// A directory's keys are its name and "/" then theirs: sorted so, the order is S3's.
	sortKey := func(e smbEntry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(entries, func(a, b smbEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	return entries, nil
}

func (w *smbWalk) dir(dir string) error {
	entries, err := w.readDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing under the prefix
	}
	if err != nil {
		return err
	}
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

// readDir lists a directory of the share ("" is its root).
func readDir(sh *smb2.Share, dir string) ([]os.FileInfo, error) {
	if dir == "" {
		dir = "."
	}
	return sh.ReadDir(dir)
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
		return isHidden(name) && strings.Contains(name, target.TempMarker) && mtime.Before(before)
	})
}

func (s *Target) removeTemporaries(ctx context.Context, dir string, match func(string, time.Time) bool) ([]string, error) {
	var removed []string
	err := s.with(ctx, func(sh *smb2.Share) error {
		infos, err := readDir(sh, s.remote(dir))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, fi := range infos {
			if !fi.Mode().IsRegular() || !match(fi.Name(), fi.ModTime()) {
				continue
			}
			p := path.Join(dir, fi.Name())
			if err := sh.Remove(s.remote(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
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
