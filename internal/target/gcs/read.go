package gcs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/guard"
)

// Get opens the object at key.
func (t *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	body, err := t.download(ctx, t.objectURL(t.object(key), url.Values{"alt": {"media"}}))
	if err != nil {
		if isObjectNotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", key, t, target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", key, t, t.explain(err))
	}
	return &objectBody{ReadCloser: body, key: key, t: t}, nil
}

// objectBody says which object a failed read was of.
type objectBody struct {
	io.ReadCloser
	key string
	t   *Target
}

func (b *objectBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s from %s: %w", b.key, b.t, err)
	}
	return n, err
}

// download GETs u; its body is cut when it makes no progress for t.stall.
func (t *Target) download(ctx context.Context, u string) (io.ReadCloser, error) {
	g := guard.NewDownload(ctx, t.stall)
	resp, err := t.do(g.Context(), http.MethodGet, u, nil)
	if err != nil {
		g.Release()
		return nil, err
	}
	return g.Body(resp.Body), nil
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
	body, err := p.t.download(ctx, p.t.objectURL(p.t.object(p.key), q))
	if err != nil {
		if isObjectNotFound(err) {
			return nil, fmt.Errorf("%s in %s: %w", p.key, p.t, target.ErrChanged)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", p.key, p.t, p.t.explain(err))
	}
	return &objectBody{ReadCloser: body, key: p.key, t: p.t}, nil
}
