// Package objects reads and writes a repository's objects on its target: reads bounded by a
// limit (no object is read whole that the repository could not have written), and stores of
// content-addressed keys that take an existing object only when it holds the same bytes.
package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Store is a repository's objects on T.
type Store struct {
	T    target.Target
	Repo string // the repository's ID, for messages
	Log  *slog.Logger
}

// Get reads a whole object, refusing more than limit bytes.
func (s Store) Get(ctx context.Context, key string, limit int64) ([]byte, error) {
	rc, err := s.T.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(rc, limit+1))
	b := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, s.T, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s in %s is larger than %d bytes: not an object this repository wrote", key, s.T, limit)
	}
	return b, nil
}

// GetSized reads the object at key, of a known size (a pack's, as indexed): into one buffer
// of that size (a growing buffer allocated, cleared and copied three times as much). It
// returns what it read, up to size bytes; more is an error.
func (s Store) GetSized(ctx context.Context, key string, size int64) ([]byte, error) {
	rc, err := s.T.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, size+1)
	n, err := io.ReadFull(rc, b)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%s in %s is larger than the %d bytes indexed: not the object this repository wrote", key, s.T, size)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return b[:n], nil
	}
	return nil, fmt.Errorf("reading %s from %s: %w", key, s.T, err)
}

// Put stores b at key; an existing object of the same content-addressed key is fine when
// same is true and it holds b (an unencrypted repository's packs and index files repeat);
// one that holds other bytes (junk put there by someone else) is replaced.
func (s Store) Put(ctx context.Context, key string, b []byte, same bool) error {
	_, err := s.T.Put(ctx, key, bytes.NewReader(b))
	if err != nil && same && errors.Is(err, target.ErrExist) {
		old, gerr := s.Get(ctx, key, int64(len(b)))
		if gerr == nil && bytes.Equal(old, b) {
			return nil
		}
		s.Log.Warn("an object of the repository holds other bytes than its name says: replaced", "repository", s.Repo, "key", key)
		if err = s.T.Delete(ctx, key); err == nil {
			_, err = s.T.Put(ctx, key, bytes.NewReader(b))
		}
	}
	if err != nil {
		return fmt.Errorf("storing %s in %s: %w", key, s.T, err)
	}
	return nil
}
