package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
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
		if strings.HasPrefix(e.Name(), "."+base+tempMarker) {
			if err := root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", filepath.Join(l.dir, dir, e.Name()), err)
			}
		}
	}
	return nil
}

// RemoveIncomplete aborts the multipart uploads of key that were never completed.
func (s *S3) RemoveIncomplete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveIncompleteUpload(ctx, s.cfg.Bucket, s.object(key)); err != nil {
		return fmt.Errorf("aborting unfinished uploads of %s: %w", key, s.explain(err))
	}
	return nil
}
