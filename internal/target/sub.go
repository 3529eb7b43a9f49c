package target

import (
	"context"
	"fmt"
	"io"
	"iter"
	"path"
	"strings"
)

// Sub returns a view of t in which every key lives under prefix: several sidecars can share
// one bucket, each under its own prefix, without ever seeing (or pruning) the others' objects.
// An empty prefix returns t itself.
func Sub(t Target, prefix string) (Target, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return t, nil
	}
	if err := ValidateKey(prefix); err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	return &sub{t: t, prefix: prefix + "/"}, nil
}

type sub struct {
	t      Target
	prefix string
}

func (s *sub) key(k string) (string, error) {
	if err := ValidateKey(k); err != nil {
		return "", err
	}
	return s.prefix + k, nil
}

func (s *sub) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	k, err := s.key(key)
	if err != nil {
		return 0, err
	}
	return s.t.Put(ctx, k, r)
}

func (s *sub) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	return s.t.Get(ctx, k)
}

func (s *sub) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		for o, err := range s.t.List(ctx, s.prefix+prefix) {
			if err != nil {
				yield(Object{}, err)
				return
			}
			if k, ok := strings.CutPrefix(o.Key, s.prefix); ok {
				o.Key = k
				if !yield(o, nil) {
					return
				}
			}
		}
	}
}

func (s *sub) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	return s.t.Delete(ctx, k)
}

func (s *sub) RemoveIncomplete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	return RemoveIncomplete(ctx, s.t, k)
}

func (s *sub) Pin(ctx context.Context, key string) (Pinned, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	return Pin(ctx, s.t, k)
}

func (s *sub) String() string {
	return strings.TrimSuffix(s.t.String(), "/") + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Join is path.Join for keys.
func Join(parts ...string) string { return strings.Trim(path.Join(parts...), "/") }

func (s *sub) Create(ctx context.Context, key string) (*PendingFile, error) {
	fc, ok := Files(s.t)
	if !ok {
		return nil, fmt.Errorf("%s keeps no local files", s.t)
	}
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	return fc.Create(ctx, k)
}
