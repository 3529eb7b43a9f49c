package rclone

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/rclone/rclone/fs"
)

// List walks the directory of prefix, one directory's entries held at a time per level,
// hidden names (temporary objects) skipped, each directory's keys in S3's lexical order.
func (t *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		start := ""
		if i := strings.LastIndex(prefix, "/"); i > 0 {
			start = prefix[:i]
			if target.ValidateKey(start) != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: prefix %q is not a clean relative path", t, prefix))
				return
			}
		}
		w := &walk{ctx: quiet(ctx), t: t, prefix: prefix, yield: yield}
		if err := t.checkDirs(w.ctx, start); err != nil {
			yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
			return
		}
		if err := w.dir(start); err != nil && !errors.Is(err, errStopped) {
			yield(target.Object{}, fmt.Errorf("listing %s: %w", t, explain(t.cfg, err)))
		}
	}
}

var errStopped = errors.New("stopped")

type walk struct {
	ctx    context.Context
	t      *Target
	prefix string
	yield  func(target.Object, error) bool
}

// sortKey orders a directory's entries as S3 orders keys: a directory is its name and "/".
func sortKey(e fs.DirEntry) string {
	if _, ok := e.(fs.Directory); ok {
		return e.Remote() + "/"
	}
	return e.Remote()
}

func (w *walk) dir(dir string) error {
	entries, err := w.t.f.List(w.ctx, dir)
	if errors.Is(err, fs.ErrorDirNotFound) {
		return nil // nothing under the prefix
	}
	if err != nil {
		return err
	}
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return strings.HasPrefix(path.Base(e.Remote()), ".") })
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortKey(a), sortKey(b)) })
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := e.Remote()
		if !strings.HasPrefix(p, w.prefix) && !strings.HasPrefix(w.prefix, p+"/") {
			continue
		}
		switch e := e.(type) {
		case fs.Directory:
			if err := w.dir(p); err != nil {
				return err
			}
		case fs.Object:
			if !strings.HasPrefix(p, w.prefix) {
				continue
			}
			if !w.yield(target.Object{Key: p, Size: e.Size(), ModTime: e.ModTime(w.ctx)}, nil) {
				return errStopped
			}
		}
	}
	return nil
}

// RemoveIncomplete removes the temporary objects of unfinished Puts of key.
func (t *Target) RemoveIncomplete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	dir, base := path.Split(key)
	_, err := t.removeTemporaries(ctx, strings.TrimSuffix(dir, "/"), func(name string, _ time.Time) bool {
		return strings.HasPrefix(name, "."+base+target.TempMarker)
	})
	return err
}

// RemoveStale removes the temporary objects of Puts that never finished in the directory of
// prefix, older than before.
func (t *Target) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if err := target.ValidateKey(dir); err != nil {
		return nil, err
	}
	return t.removeTemporaries(ctx, dir, func(name string, mtime time.Time) bool {
		return strings.HasPrefix(name, ".") && strings.Contains(name, target.TempMarker) && mtime.Before(before)
	})
}

func (t *Target) removeTemporaries(ctx context.Context, dir string, match func(string, time.Time) bool) ([]string, error) {
	ctx = quiet(ctx)
	if err := t.checkDirs(ctx, dir); err != nil {
		return nil, fmt.Errorf("removing unfinished uploads in %s: %w", t.where(dir), err)
	}
	entries, err := t.f.List(ctx, dir)
	if errors.Is(err, fs.ErrorDirNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("removing unfinished uploads in %s: %w", t.where(dir), explain(t.cfg, err))
	}
	var removed []string
	for _, e := range entries {
		o, ok := e.(fs.Object)
		if !ok || !match(path.Base(o.Remote()), o.ModTime(ctx)) {
			continue
		}
		if err := o.Remove(ctx); err != nil && !errors.Is(err, fs.ErrorObjectNotFound) {
			return removed, fmt.Errorf("removing %s: %w", t.where(o.Remote()), explain(t.cfg, err))
		}
		removed = append(removed, o.Remote())
	}
	return removed, nil
}
