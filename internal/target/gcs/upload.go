package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Put uploads r to key in a resumable upload session, one chunk (ChunkSize, the one buffer
// it holds) per request. The upload is conditional on the object not existing
// (ifGenerationMatch=0): an existing object is never replaced. Until the last chunk the object
// does not exist; a failed upload's session is cancelled (and would expire unseen anyway).
func (t *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return t.put(ctx, key, r, nil)
}

// PutPaced is Put sending at most at lim's rate: each chunk is paced as it is sent, not as it
// is read into the buffer.
func (t *Target) PutPaced(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	return t.put(ctx, key, r, lim)
}

func (t *Target) put(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	size := t.cfg.ChunkSize
	if b, ok := r.(interface{ Len() int }); ok && int64(b.Len()) < size {
		size = int64(b.Len()) // a small body of known length: no chunk-sized buffer
	}
	// GCS checks ifGenerationMatch=0 only when the upload completes: an existing object is
	// looked up first, so that it is refused before any byte is sent.
	if err := t.getJSON(ctx, t.objectURL(t.object(key), url.Values{"fields": {"generation"}}), &struct{}{}); err == nil {
		return 0, fmt.Errorf("%s in %s: %w", key, t, target.ErrExist)
	} else if !isObjectNotFound(err) {
		return 0, t.putError(key, err)
	}
	session, err := t.startUpload(ctx, t.object(key))
	if err != nil {
		return 0, t.putError(key, err)
	}
	up := &upload{t: t, session: session, buf: make([]byte, max(size, 1)), lim: lim}
	n, err := up.run(ctx, r)
	if err != nil {
		t.cancelUpload(ctx, session)
		return 0, t.putError(key, err)
	}
	return n, nil
}

func (t *Target) putError(key string, err error) error {
	if isStatus(err, http.StatusPreconditionFailed) {
		return fmt.Errorf("%s in %s: %w", key, t, target.ErrExist)
	}
	return fmt.Errorf("uploading %s to %s: %w", key, t, t.explain(err))
}

// startUpload opens a resumable upload session of name, conditional on no object of that
// name existing, and returns its URI.
func (t *Target) startUpload(ctx context.Context, name string) (string, error) {
	q := url.Values{"uploadType": {"resumable"}, "name": {name}, "ifGenerationMatch": {"0"}}
	u := t.base + "/upload/storage/v1/b/" + url.PathEscape(t.cfg.Bucket) + "/o?" + q.Encode()
	meta, _ := json.Marshal(map[string]string{"name": name, "contentType": "application/octet-stream"})
	hdr := http.Header{"Content-Type": {"application/json; charset=UTF-8"}, "X-Upload-Content-Type": {"application/octet-stream"}}
	var err error
	for attempt := range attempts {
		if attempt > 0 && !t.backoff(ctx, attempt) {
			break
		}
		var resp *http.Response
		if resp, err = t.send(ctx, http.MethodPost, u, hdr, bytes.NewReader(meta)); err == nil {
			resp.Body.Close()
			return t.sessionURI(resp.Header.Get("Location"))
		}
		if !retryable(ctx, err) {
			return "", err
		}
	}
	return "", err
}

// sessionURI checks the session's URI. Against an emulator only its path and query are
// kept, on the configured endpoint: an emulator names itself as it was started, which may
// not be how this process reaches it (a container reaching the host). Google's must be on
// its own API host: the session's requests carry the bearer token.
func (t *Target) sessionURI(loc string) (string, error) {
	u, err := url.Parse(loc)
	if loc == "" || err != nil {
		return "", fmt.Errorf("%s gave no resumable upload session", t.where())
	}
	if t.cfg.Endpoint != "" {
		return t.cfg.Endpoint + u.RequestURI(), nil
	}
	if u.Scheme+"://"+u.Host != t.base {
		return "", fmt.Errorf("%s gave a resumable upload session on another host (%s): refused, the token is not sent there", t.where(), u.Host)
	}
	return loc, nil
}

// cancelUpload ends an upload session that failed, so that nothing of it is kept (GCS
// answers 499). A session left behind (the process killed) is never listed and expires.
func (t *Target) cancelUpload(ctx context.Context, session string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	resp, err := t.send(ctx, http.MethodDelete, session, nil, nil)
	if err == nil {
		resp.Body.Close()
	} else if !isStatus(err, 499) && !isStatus(err, http.StatusNotFound) {
		slog.Debug("cancelling an upload session", "target", t.String(), "error", err)
	}
}

// upload is one resumable upload in progress.
type upload struct {
	t       *Target
	session string
	buf     []byte
	lim     *bandwidth.Limiter
	offset  int64 // bytes the server has stored
}

// run sends r chunk by chunk; the chunk that ends r is sent with the total size, which
// completes the object.
func (up *upload) run(ctx context.Context, r io.Reader) (int64, error) {
	for {
		n, err := io.ReadFull(r, up.buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			return 0, fmt.Errorf("reading the data to upload: %w", err)
		}
		if err := up.chunk(ctx, up.buf[:n], last); err != nil {
			return 0, err
		}
		if last {
			return up.offset, nil
		}
	}
}

// chunk sends one chunk; while that fails transiently (or the server kept only part of it) it
// asks the server how much it holds and sends the rest.
func (up *upload) chunk(ctx context.Context, b []byte, last bool) error {
	start, end := up.offset, up.offset+int64(len(b))
	failures := 0
	for {
		before := up.offset
		done, err := up.send(ctx, b[up.offset-start:], last, end)
		switch {
		case err == nil && done && !last:
			return fmt.Errorf("%s completed the object before its end", up.t.where())
		case err == nil && (done || up.offset == end && !last):
			return nil
		case err == nil && (up.offset < start || up.offset > end):
			return fmt.Errorf("the upload session holds %d bytes, expected %d to %d", up.offset, start, end)
		case err == nil && up.offset > before:
			continue // the server kept part of the chunk: the rest follows
		case err == nil:
			err = fmt.Errorf("%s stored nothing of the chunk at %d", up.t.where(), before)
		case !retryable(ctx, err):
			return err
		}
		if failures++; failures >= attempts || !up.t.backoff(ctx, failures) {
			return err
		}
		done, serr := up.status(ctx, last, end)
		switch {
		case serr != nil && !retryable(ctx, serr):
			return serr
		case done && !last: // fake-gcs-server answers a status query so; GCS never does
			return fmt.Errorf("%s reports the upload complete before its end", up.t.where())
		case done:
			return nil
		}
		if up.offset < start || up.offset > end {
			return fmt.Errorf("the upload session holds %d bytes, expected %d to %d", up.offset, start, end)
		}
	}
}

// send PUTs b at up.offset (total known when last), and records how much the server holds.
func (up *upload) send(ctx context.Context, b []byte, last bool, end int64) (bool, error) {
	total := "*"
	if last {
		total = strconv.FormatInt(end, 10)
	}
	rng := fmt.Sprintf("bytes %d-%d/%s", up.offset, end-1, total)
	if len(b) == 0 {
		rng = "bytes */" + total
	}
	var body io.Reader = bytes.NewReader(b)
	if up.lim != nil {
		body = up.lim.Reader(ctx, body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, up.session, body)
	if err != nil {
		return false, err
	}
	req.ContentLength = int64(len(b))
	req.Header.Set("Content-Range", rng)
	return up.answer(req, end)
}

// status asks the server how much of the upload it holds (after a failed chunk).
func (up *upload) status(ctx context.Context, last bool, end int64) (bool, error) {
	rng := "bytes */*"
	if last {
		rng = "bytes */" + strconv.FormatInt(end, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, up.session, http.NoBody)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Range", rng)
	return up.answer(req, end)
}

// answer sends req and reads what the server holds: 308 with its Range ("bytes=0-N"), or
// 200/201 when the object is complete.
func (up *upload) answer(req *http.Request, end int64) (bool, error) {
	resp, err := up.t.client.Do(req)
	if err != nil {
		return false, unURL(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		up.offset = end
		return true, nil
	case http.StatusPermanentRedirect:
		up.offset = 0
		if r := resp.Header.Get("Range"); r != "" {
			_, last, _ := strings.Cut(r, "-")
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil {
				return false, fmt.Errorf("the upload session answered Range %q", r)
			}
			up.offset = n + 1
		}
		return false, nil
	}
	return false, readAPIError(resp, up.t.stall)
}
