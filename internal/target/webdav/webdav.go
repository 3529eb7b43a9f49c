// Package webdav is the WebDAV target: a collection on a WebDAV server (Nextcloud, Apache
// httpd's mod_dav, nginx's dav module, a NAS), spoken to with plain net/http.
package webdav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Target keeps objects as files in a collection on a WebDAV server. A file is uploaded to a
// hidden temporary name beside its key (chunked, streamed), then moved into place with MOVE
// and "Overwrite: F", which the server refuses (412) when the key exists.
type Target struct {
	cfg         Config
	client      *http.Client
	user        string
	password    string
	userVar     string // where user came from, for messages
	passwordVar string
	log         *slog.Logger
	stall       time.Duration // see stallTimeout
}

// New returns a target for cfg, reading the user and password from the environment
// (CredentialsEnv_WEBDAV_*, then DOCKER_BACKUP_WEBDAV_*). No request is made yet.
func New(cfg Config) (*Target, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("a WebDAV target needs a host: %s", form)
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("WebDAV target %s: %w", cfg, err)
	}
	t := &Target{cfg: cfg, log: slog.Default(), userVar: EnvUsername, passwordVar: EnvPassword, stall: stallTimeout}
	t.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var sets []string
	if cfg.CredentialsEnv != "" {
		sets = append(sets, cfg.CredentialsEnv+"_WEBDAV_")
	}
	sets = append(sets, "DOCKER_BACKUP_WEBDAV_")
	for _, set := range sets {
		user, err := target.EnvOrFile(set + "USERNAME")
		if err != nil {
			return nil, err
		}
		password, err := target.EnvOrFile(set + "PASSWORD")
		if err != nil {
			return nil, err
		}
		if user != "" || password != "" {
			t.user, t.password, t.userVar, t.passwordVar = user, password, set+"USERNAME", set+"PASSWORD"
			break
		}
	}
	return t, nil
}

// String is the target's URL: no secret is in it.
func (t *Target) String() string { return t.cfg.String() }

// Config returns the target's configuration.
func (t *Target) Config() Config { return t.cfg }

// Close closes the target's idle connections. The target can be used again.
func (t *Target) Close() error {
	t.client.CloseIdleConnections()
	return nil
}

// url is the URL of key (a file) or of a collection (dir true: a trailing slash).
func (t *Target) url(key string, dir bool) string {
	u := t.cfg.base()
	if key != "" && key != "." {
		u.Path += key
		if dir {
			u.Path += "/"
		}
	}
	return u.String()
}

// where names key for messages: the key and the target.
func (t *Target) where(key string) string { return key + " in " + t.String() }

// Put uploads r to a temporary name beside key, then moves it into place. An existing
// object is never replaced: the key is looked at first, and the MOVE itself refuses. A failed
// or cancelled Put deletes its temporary file; one it cannot reach is swept later
// (RemoveIncomplete, RemoveStale).
func (t *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	if err := t.prepare(ctx, key); err != nil {
		return 0, err
	}
	dir, base := path.Split(key)
	tmp := dir + "." + base + target.TempMarker + target.RandomSuffix()
	n, err := t.upload(ctx, tmp, r)
	if err == nil {
		err = ctx.Err() // cancelled once the stream was whole: not published either
	}
	if err == nil {
		err = t.move(ctx, tmp, key)
		if errors.Is(err, target.ErrExist) {
			t.removeTemporary(ctx, tmp)
			return n, err
		}
	}
	if err != nil {
		t.removeTemporary(ctx, tmp)
		return n, fmt.Errorf("storing %s: %w", t.where(key), err)
	}
	return n, nil
}

// prepare refuses a key that exists and makes the collections above it.
func (t *Target) prepare(ctx context.Context, key string) error {
	_, err := t.head(ctx, key)
	switch {
	case err == nil:
		return fmt.Errorf("%s: %w", t.where(key), target.ErrExist)
	case !errors.Is(err, target.ErrNotExist):
		return fmt.Errorf("storing %s: %w", t.where(key), err)
	}
	if err := t.mkcol(ctx, path.Dir(path.Join(t.cfg.Path, key)), true); err != nil {
		return fmt.Errorf("storing %s: %w", t.where(key), err)
	}
	return nil
}

// mkcol makes the collection at the server's path dir and those above it (the target's own
// included): the deepest first, its parents only when the server says they are missing (409),
// so a Put into an existing collection costs one request. 405 is the server's answer for a
// collection that exists.
func (t *Target) mkcol(ctx context.Context, dir string, parents bool) error {
	if dir == "/" || dir == "." || dir == "" {
		return nil
	}
	u := t.cfg.base()
	u.Path = dir + "/"
	resp, err := t.do(ctx, request{method: "MKCOL", url: u.String()})
	if err != nil {
		return fmt.Errorf("creating the collection %s: %w", dir, t.netError(err))
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusMethodNotAllowed:
		drain(resp)
		return nil
	case http.StatusConflict:
		drain(resp)
		if !parents {
			return fmt.Errorf("creating the collection %s: the server refuses (409 Conflict): is something above it a file?", dir)
		}
		if err := t.mkcol(ctx, path.Dir(dir), true); err != nil {
			return err
		}
		return t.mkcol(ctx, dir, false)
	}
	return fmt.Errorf("creating the collection %s: %w", dir, t.statusError(resp))
}

// upload streams r to the file tmp, then checks the server kept every byte.
func (t *Target) upload(ctx context.Context, tmp string, r io.Reader) (int64, error) {
	src := &countingReader{r: target.WithContext(ctx, r)}
	rctx, guard, release := newStallGuard(ctx, t.stall)
	guard.arm()
	resp, err := t.do(rctx, request{method: http.MethodPut, url: t.url(tmp, false), stream: &uploadBody{r: src, g: guard},
		header: http.Header{"Content-Type": {"application/octet-stream"}}})
	release()
	if src.err != nil {
		if resp != nil {
			drain(resp)
		}
		return src.n, src.err // the backup's stream failed (or was cancelled), not the server
	}
	if err != nil {
		return src.n, fmt.Errorf("uploading: %w", stalled(rctx, t.netError(err)))
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return src.n, fmt.Errorf("uploading: %w", t.statusError(resp))
	}
	drain(resp)
	info, err := t.head(ctx, tmp)
	if err != nil {
		return src.n, fmt.Errorf("checking the upload: %w", err)
	}
	if info.size >= 0 && info.size != src.n {
		return src.n, fmt.Errorf("the server kept %d of the %d bytes sent (a full disk or quota?)", info.size, src.n)
	}
	return src.n, nil
}

// countingReader counts what a Put reads and keeps its stream's error, to tell it from the
// server's.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// move renames tmp to key, refusing to replace it (Overwrite: F).
func (t *Target) move(ctx context.Context, tmp, key string) error {
	resp, err := t.do(ctx, request{method: "MOVE", url: t.url(tmp, false), once: true,
		header: http.Header{"Destination": {t.url(key, false)}, "Overwrite": {"F"}}})
	if err != nil {
		return fmt.Errorf("moving %s into place: %w", tmp, t.netError(err))
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent:
		drain(resp)
		return nil
	case http.StatusPreconditionFailed:
		drain(resp)
		return fmt.Errorf("%s: %w", t.where(key), target.ErrExist)
	}
	return fmt.Errorf("moving %s into place: %w", tmp, t.statusError(resp))
}

// removeTemporary deletes a failed Put's temporary file, even once the Put's context is
// cancelled, for up to a minute; what it cannot delete is swept later.
func (t *Target) removeTemporary(ctx context.Context, tmp string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := t.delete(ctx, tmp)
	// The server may still be ending the aborted PUT, holding its lock (423) a moment.
	for pause := 100 * time.Millisecond; isLocked(err) && pause < 5*time.Second; pause *= 2 {
		time.Sleep(pause)
		err = t.delete(ctx, tmp)
	}
	if err != nil {
		t.log.WarnContext(ctx, "webdav: a failed upload's temporary file is left, to be swept later", "file", tmp, "target", t.String(), "error", err)
	}
}

// Delete removes the file at key.
func (t *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	if err := t.delete(ctx, key); err != nil {
		return fmt.Errorf("deleting %s: %w", t.where(key), err)
	}
	return nil
}

func (t *Target) delete(ctx context.Context, key string) error {
	resp, err := t.do(ctx, request{method: http.MethodDelete, url: t.url(key, false)})
	if err != nil {
		return t.netError(err)
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
		drain(resp)
		return nil
	}
	return t.statusError(resp)
}

// Requirement is what the user needs on the server for an operation of target.Check.
func (t *Target) Requirement(operation string) string {
	need := map[string]string{
		"write":  "to create collections (MKCOL) and files (PUT) in the target's collection, and to move them there (MOVE)",
		"list":   "to list the target's collections (PROPFIND)",
		"read":   "to read the files it wrote (GET)",
		"delete": "to delete the files it wrote (DELETE)",
	}[operation]
	if need == "" {
		return ""
	}
	return "the user needs " + need
}

func isLocked(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusLocked
}
