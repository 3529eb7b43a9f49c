package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/guard"
)

// List yields the blobs whose keys start with prefix, a page at a time, in the service's
// order: by name, as UTF-8 bytes compare (S3's order).
func (t *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		full := t.blob(prefix)
		if prefix == "" && t.cfg.Prefix != "" {
			full = t.cfg.Prefix + "/"
		}
		marker := ""
		check := guard.Listing{Less: guard.UTF16Less} // Azurite's order, and Azure's
		for {
			page, err := t.page(ctx, full, marker)
			if err != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
				return
			}
			for _, b := range page.Blobs {
				if err := check.Name(b.Name); err != nil {
					yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
					return
				}
				mod, _ := time.Parse(http.TimeFormat, b.Properties.LastModified)
				key := strings.TrimPrefix(b.Name, t.cfg.Prefix+"/")
				if t.cfg.Prefix == "" {
					key = b.Name
				}
				if !yield(target.Object{Key: key, Size: b.Properties.ContentLength, ModTime: mod}, nil) {
					return
				}
			}
			if err := check.Next(page.NextMarker, len(page.Blobs)); err != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
				return
			}
			if marker = page.NextMarker; marker == "" {
				return
			}
		}
	}
}

// properties are what a Get Blob Properties (HEAD) says of key: its ETag and size. The error
// is the service's, as it answered.
func (t *Target) properties(ctx context.Context, key string) (pinned, error) {
	resp, err := t.do(ctx, request{method: http.MethodHead, blob: t.blob(key)})
	if err != nil {
		return pinned{}, err
	}
	resp.Body.Close()
	return pinned{t: t, key: key, etag: resp.Header.Get("ETag"), size: resp.ContentLength}, nil
}

// missing says whether the service answered that the blob does not exist.
func missing(err error) bool {
	status, code := errorCode(err)
	return code == "BlobNotFound" || (status == 404 && code != "ContainerNotFound")
}

// readError turns a refused read of key into ErrNotExist, ErrChanged or what to do.
func (t *Target) readError(key string, err error) error {
	status, _ := errorCode(err)
	switch {
	case missing(err):
		return fmt.Errorf("%s in %s: %w", key, t, target.ErrNotExist)
	case status == 412:
		return fmt.Errorf("%s in %s: %w", key, t, target.ErrChanged)
	}
	return fmt.Errorf("reading %s from %s: %w", key, t, t.explain(err))
}

// Get opens the blob at key. A read that breaks resumes where it stopped, from the same
// version of the blob (If-Match on its ETag); a blob answered without an ETag is not resumed.
func (t *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	return pinned{t: t, key: key}.open(ctx)
}

// Pin fixes the blob's version (its ETag): every Open reads that version or fails with
// ErrChanged.
func (t *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	p, err := t.properties(ctx, key)
	if err != nil {
		return nil, t.readError(key, err)
	}
	return p, nil
}

// pinned is a blob's version: its ETag ("" until the first read learns it) and size.
type pinned struct {
	t         *Target
	key, etag string
	size      int64
}

func (p pinned) Size() int64  { return p.size }
func (p pinned) Close() error { return nil }

func (p pinned) Open(ctx context.Context) (io.ReadCloser, error) { return p.open(ctx) }

func (p pinned) open(ctx context.Context) (io.ReadCloser, error) {
	body, etag, err := p.get(ctx, 0)
	if err != nil {
		return nil, err
	}
	p.etag = etag
	return &blobReader{ctx: ctx, p: p, body: body}, nil
}

// get reads the blob from offset on, on the condition that it is still p.etag when set. The
// body is cut when it makes no progress for t.stall.
func (p pinned) get(ctx context.Context, offset int64) (io.ReadCloser, string, error) {
	r := request{method: http.MethodGet, blob: p.t.blob(p.key), header: http.Header{}}
	if p.etag != "" {
		r.header.Set("If-Match", p.etag)
	}
	if offset > 0 {
		r.header.Set("x-ms-range", fmt.Sprintf("bytes=%d-", offset))
	}
	g := guard.NewDownload(ctx, p.t.stall)
	resp, err := p.t.do(g.Context(), r)
	if err != nil {
		g.Release()
		return nil, "", p.t.readError(p.key, err)
	}
	if err := p.check(resp, offset); err != nil {
		resp.Body.Close()
		g.Release()
		return nil, "", err
	}
	return g.Body(resp.Body), resp.Header.Get("ETag"), nil
}

// check refuses an answer that is not what was asked: another version than p.etag, or, for
// a resumed read, not the rest from offset (206 with Content-Range: bytes OFFSET-…); a
// server or proxy that ignored the range would splice the blob's start onto its middle.
func (p pinned) check(resp *http.Response, offset int64) error {
	if etag := resp.Header.Get("ETag"); p.etag != "" && etag != p.etag {
		return fmt.Errorf("%s in %s: %w (the service answered another version)", p.key, p.t, target.ErrChanged)
	}
	if offset == 0 {
		return nil
	}
	rng := resp.Header.Get("Content-Range")
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(rng, fmt.Sprintf("bytes %d-", offset)) {
		return fmt.Errorf("reading %s from %s: the service answered a resumed read with %d and Content-Range %.40q, not the rest from byte %d",
			p.key, p.t, resp.StatusCode, rng, offset)
	}
	return nil
}

// blobReader reads a blob; when the connection breaks it asks again for the rest, from the
// same version, a few times.
type blobReader struct {
	ctx     context.Context
	p       pinned
	body    io.ReadCloser
	off     int64
	resumes int
}

func (r *blobReader) Read(b []byte) (int, error) {
	n, err := r.body.Read(b)
	r.off += int64(n)
	if err == nil || err == io.EOF || !r.resumable(err) {
		if err != nil && err != io.EOF {
			err = fmt.Errorf("reading %s from %s: %w", r.p.key, r.p.t, err)
		}
		return n, err
	}
	r.resumes++
	r.p.t.log.Debug("azure: resuming a read", "key", r.p.key, "at", r.off, "error", err)
	r.body.Close()
	body, _, gerr := r.p.get(r.ctx, r.off)
	if gerr != nil {
		r.body = io.NopCloser(errReader{gerr})
		return n, gerr
	}
	r.body = body
	if n > 0 {
		return n, nil
	}
	return r.Read(b)
}

// resumable says whether a read that failed with err may ask again for the rest: not when the
// caller gave up, the server stopped sending (it would again), the blob has no ETag (the
// rest could be another blob's) or the read resumed a few times already.
func (r *blobReader) resumable(err error) bool {
	switch {
	case r.ctx.Err() != nil || errors.Is(err, guard.ErrStalled) || r.resumes >= 3:
		return false
	case r.p.etag == "":
		r.p.t.log.Debug("azure: a broken read not resumed: the blob has no ETag", "key", r.p.key, "at", r.off)
		return false
	}
	return true
}

func (r *blobReader) Close() error { return r.body.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
