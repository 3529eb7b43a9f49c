package gcs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Get opens the object at key.
func (t *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	resp, err := t.do(ctx, http.MethodGet, t.objectURL(t.object(key), url.Values{"alt": {"media"}}), nil)
	if err != nil {
		if isObjectNotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", key, t, target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", key, t, t.explain(err))
	}
	return resp.Body, nil
}

// Pin fixes the object's generation: every Open reads that generation, or fails with
// ErrChanged once it was replaced or deleted.
func (t *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	var meta struct {
		Generation int64 `json:"generation,string"`
		Size       int64 `json:"size,string"`
	}
	if err := t.getJSON(ctx, t.objectURL(t.object(key), url.Values{"fields": {"generation,size"}}), &meta); err != nil {
		if isObjectNotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", key, t, target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", key, t, t.explain(err))
	}
	return &pinned{t: t, key: key, generation: meta.Generation, size: meta.Size}, nil
}

type pinned struct {
	t          *Target
	key        string
	generation int64
	size       int64
}

func (p *pinned) Size() int64  { return p.size }
func (p *pinned) Close() error { return nil }

// Open reads the pinned generation. GCS keeps one live generation of an object (without
// versioning): a replaced or deleted one is gone, and its read fails with 404.
func (p *pinned) Open(ctx context.Context) (io.ReadCloser, error) {
	q := url.Values{"alt": {"media"}, "generation": {strconv.FormatInt(p.generation, 10)}}
	resp, err := p.t.do(ctx, http.MethodGet, p.t.objectURL(p.t.object(p.key), q), nil)
	if err != nil {
		if isObjectNotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", p.key, p.t, target.ErrChanged)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", p.key, p.t, p.t.explain(err))
	}
	return resp.Body, nil
}
