package webdav

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// fileInfo is what the server says of a file: its size (-1: not said), ETag (empty: not said)
// and modification time.
type fileInfo struct {
	size  int64
	etag  string // the opaque tag, quoted, without W/
	weak  bool   // W/: If-Match cannot name it (Apache's for a file changed in the last second)
	mtime time.Time
}

// infoOf reads a response's headers (HEAD or GET) for a file's size, ETag and time.
func infoOf(resp *http.Response) fileInfo {
	info := fileInfo{size: -1}
	if v := resp.Header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			info.size = n
		}
	}
	e := strings.TrimSpace(resp.Header.Get("ETag"))
	e, info.weak = strings.CutPrefix(e, "W/")
	if strings.HasPrefix(e, `"`) && strings.HasSuffix(e, `"`) && len(e) > 1 {
		info.etag = e
	}
	info.mtime, _ = http.ParseTime(resp.Header.Get("Last-Modified"))
	return info
}

// head asks for a file's size, ETag and time; a missing file wraps target.ErrNotExist.
func (t *Target) head(ctx context.Context, key string) (fileInfo, error) {
	resp, err := t.do(ctx, request{method: http.MethodHead, url: t.url(key, false)})
	if err != nil {
		return fileInfo{}, t.netError(err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		drain(resp)
		return fileInfo{}, fmt.Errorf("%s: %w", t.where(key), target.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return fileInfo{}, t.statusError(resp)
	}
	drain(resp)
	return infoOf(resp), nil
}

// Get opens the file at key.
func (t *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	resp, err := t.get(ctx, key, "")
	if err != nil {
		return nil, err
	}
	return &reader{t: t, key: key, body: resp.Body}, nil
}

// get sends a GET of key, If-Match etag when it is not empty. The response's body is cut if
// the server stops sending it for t.stall (do's guard); closing it releases the request.
func (t *Target) get(ctx context.Context, key, etag string) (*http.Response, error) {
	req := request{method: http.MethodGet, url: t.url(key, false), header: http.Header{"Accept-Encoding": {"identity"}}}
	if etag != "" {
		req.header.Set("If-Match", etag)
	}
	resp, err := t.do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.where(key), t.netError(err))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, nil
	case http.StatusNotFound:
		drain(resp)
		return nil, fmt.Errorf("%s: %w", t.where(key), target.ErrNotExist)
	case http.StatusPreconditionFailed:
		drain(resp)
		return nil, fmt.Errorf("reading %s: %w", t.where(key), target.ErrChanged)
	}
	return nil, fmt.Errorf("reading %s: %w", t.where(key), t.statusError(resp))
}

// reader is a GET's body, its errors naming the key and the target.
type reader struct {
	t    *Target
	key  string
	body io.ReadCloser
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		if d, ok := r.body.(*downloadBody); ok {
			err = stalled(d.ctx, err)
		}
		err = fmt.Errorf("reading %s: %w", r.t.where(r.key), r.t.netError(err))
	}
	return n, err
}

func (r *reader) Close() error { return r.body.Close() }

// Pin notes the file's ETag (or, on a server that gives none, its size and time): every Open
// reads the file only if it is still that one. The server checks a strong ETag (If-Match: 412
// when the file changed), and the response's own ETag is compared too. An ETag is only as
// strong as the server makes it (Apache's is the size and time, which a writer can set back):
// every read to the end is also checked against the first one's digest (target.SameBytes).
func (t *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	info, err := t.head(ctx, key)
	if err != nil {
		if !isNotExist(err) {
			err = fmt.Errorf("reading %s: %w", t.where(key), err)
		}
		return nil, err
	}
	return &pinned{t: t, key: key, info: info}, nil
}

type pinned struct {
	t    *Target
	key  string
	info fileInfo
	same target.SameBytes // an ETag of size and time misses a rewrite in place: its read's end does not
}

func (p *pinned) Size() int64  { return p.info.size }
func (p *pinned) Close() error { return nil }

func (p *pinned) Open(ctx context.Context) (io.ReadCloser, error) {
	etag := p.info.etag
	if p.info.weak {
		etag = "" // the server would refuse it: the response's own is compared below
	}
	resp, err := p.t.get(ctx, p.key, etag)
	if isNotExist(err) {
		return nil, fmt.Errorf("reading %s: it was deleted: %w", p.t.where(p.key), target.ErrChanged)
	}
	if err != nil {
		return nil, err
	}
	if !p.info.same(infoOf(resp)) {
		drain(resp)
		return nil, fmt.Errorf("reading %s: %w", p.t.where(p.key), target.ErrChanged)
	}
	return p.same.Reader(&reader{t: p.t, key: p.key, body: resp.Body}, p.t.where(p.key)), nil
}

// same says whether got is the file pinned: the same opaque ETag where the server gives one
// (Apache's, weak or strong, is the size and the time to the microsecond), else the same size
// and time.
func (i fileInfo) same(got fileInfo) bool {
	if i.etag != "" && got.etag != "" {
		return i.etag == got.etag
	}
	return (i.size < 0 || got.size < 0 || i.size == got.size) && i.mtime.Equal(got.mtime)
}
