package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// IncompleteRemover is implemented by targets that can clean up after a Put that never
// finished because the process writing it died (a crash, kill -9): a local temporary file, an
// S3 multipart upload that was never completed or aborted.
type IncompleteRemover interface {
	RemoveIncomplete(ctx context.Context, key string) error
}

// RemoveIncomplete removes what an unfinished Put of key left behind, when t can tell.
func RemoveIncomplete(ctx context.Context, t Target, key string) error {
	if r, ok := t.(IncompleteRemover); ok {
		return r.RemoveIncomplete(ctx, key)
	}
	return nil
}

// RemoveIncomplete removes the temporary files of unfinished Puts of key.
func (l *Local) RemoveIncomplete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	root, err := l.open()
	if err != nil {
		return err
	}
	defer root.Close()
	dir, base := path.Split(key)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	entries, err := fs.ReadDir(root.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(l.dir, dir), err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+base+TempMarker) {
			if err := root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", filepath.Join(l.dir, dir, e.Name()), err)
			}
		}
	}
	return nil
}

// StaleRemover is implemented by targets that can find what Puts left behind under a
// prefix without knowing their keys: local temporary files, S3 multipart uploads never
// completed. Only what is older than the cut-off is removed: a Put in progress is younger.
type StaleRemover interface {
	RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error)
}

// RemoveStale removes what unfinished Puts left under prefix before the cut-off, when t can
// tell, and returns what it removed.
func RemoveStale(ctx context.Context, t Target, prefix string, before time.Time) ([]string, error) {
	if r, ok := t.(StaleRemover); ok {
		return r.RemoveStale(ctx, prefix, before)
	}
	return nil, nil
}

// RemoveStale removes the temporary files of Puts that never finished (a process killed
// while writing) in the directory of prefix, older than before.
func (l *Local) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if err := ValidateKey(dir); err != nil {
		return nil, err
	}
	root, err := l.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(l.dir, dir), err)
	}
	var removed []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") || !strings.Contains(e.Name(), TempMarker) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(before) {
			continue
		}
		p := path.Join(dir, e.Name())
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("removing %s: %w", filepath.Join(l.dir, p), err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

func (s *sub) RemoveStale(ctx context.Context, prefix string, before time.Time) ([]string, error) {
	removed, err := RemoveStale(ctx, s.t, s.prefix+prefix, before)
	for i, k := range removed {
		removed[i] = strings.TrimPrefix(k, s.prefix)
	}
	return removed, err
}
