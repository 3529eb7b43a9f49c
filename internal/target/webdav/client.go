package webdav

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// Bounds of the target's requests.
const (
	dialTimeout = 30 * time.Second
	// headerTimeout bounds the wait for a response once a request is sent (a PUT's whole body
	// included): a server that stops answering fails the request instead of hanging it.
	headerTimeout = 2 * time.Minute
	idleTimeout   = time.Minute
	// attempts is how often an idempotent request is sent while the server cannot be reached
	// or answers 502, 503 or 504, with a growing pause.
	attempts = 3
)

// newTransport makes the target's HTTP transport: the system's CAs and the one given.
func newTransport(cfg Config) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = headerTimeout
	tr.IdleConnTimeout = idleTimeout
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle %s: %w", cfg.CAFile, err)
		}
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA bundle %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// request is one request to the server: its method, URL, headers and body.
type request struct {
	method string
	url    string
	header http.Header
	body   []byte    // a body that can be sent again
	stream io.Reader // or a stream sent once, with chunked transfer encoding
	// once: not sent again after a network error (the server may have done it: a MOVE).
	once bool
}

// do sends req. A request without a stream is sent again, with a pause, while the server
// answers 502, 503 or 504, or (unless once) cannot be reached. The caller closes the
// response's body, which is cut if the server stops sending it for t.stall (a
// *downloadBody): a listing, a drained answer or a download never waits for ever.
func (t *Target) do(ctx context.Context, req request) (*http.Response, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		resp, err := t.send(ctx, req)
		retry := req.stream == nil && attempt < attempts && ctx.Err() == nil
		switch {
		case err != nil && !(retry && !req.once && transient(err)):
			return nil, err
		case err == nil && !(retry && unavailable(resp.StatusCode)):
			return resp, nil
		}
		if resp != nil {
			drain(resp)
		}
		t.log.DebugContext(ctx, "webdav: trying again", "method", req.method, "target", t.String(), "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// send sends req once, the response's body under a stall guard.
func (t *Target) send(ctx context.Context, req request) (*http.Response, error) {
	rctx, guard, release := newStallGuard(ctx, t.stall)
	resp, err := t.sendOnce(rctx, req)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &downloadBody{ctx: rctx, body: resp.Body, g: guard, release: release}
	return resp, nil
}

func (t *Target) sendOnce(ctx context.Context, req request) (*http.Response, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	} else if req.stream != nil {
		body = req.stream
	}
	r, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, err
	}
	if req.stream != nil {
		r.ContentLength = -1 // chunked: the length is not known before the end
	}
	for k, v := range req.header {
		r.Header[k] = v
	}
	if t.user != "" || t.password != "" {
		r.SetBasicAuth(t.user, t.password)
	}
	return t.client.Do(r)
}

// transient tells the network's errors worth another try from the others (a refused
// certificate, a cancelled context).
func transient(err error) bool {
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func unavailable(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// drain reads a little of a response's body, so its connection is used again, and closes it.
// The body is do's, cut by its stall guard if the server stops sending it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// bodyError says what a failed read of resp's body was: cut by its stall guard, or the
// network's error.
func (t *Target) bodyError(resp *http.Response, err error) error {
	if d, ok := resp.Body.(*downloadBody); ok {
		err = stalled(d.ctx, err)
	}
	return t.netError(err)
}

// StatusError is a response the target did not expect: its method and status.
type StatusError struct {
	Method string
	Code   int
	Status string
}

func (e *StatusError) Error() string { return e.Method + ": " + e.Status }

// statusError closes resp and says which of authentication, permission, space or the
// server itself failed.
func (t *Target) statusError(resp *http.Response) error {
	drain(resp)
	err := &StatusError{Method: resp.Request.Method, Code: resp.StatusCode, Status: resp.Status}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("authentication failed: %s: %w", t.credentialsHint(), err)
	case http.StatusForbidden:
		return fmt.Errorf("permission denied: the server does not let %s do this there: %w", t.who(), err)
	case http.StatusInsufficientStorage:
		return fmt.Errorf("no space left on the server (or the user's quota is used up): %w", err)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("the server refuses a body that large (its LimitRequestBody, client_max_body_size or upload limit): %w", err)
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return fmt.Errorf("the server does not allow this WebDAV method there (is DAV enabled on %s?): %w", t.cfg.base(), err)
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return fmt.Errorf("the server redirects to %s: give that URL as the target: %w", resp.Header.Get("Location"), err)
	}
	return err
}

// credentialsHint names where the user and password came from, never the password.
func (t *Target) credentialsHint() string {
	if t.user == "" && t.password == "" {
		return "the server wants a user and password: set " + t.userVar + " and " + t.passwordVar + " (or " + t.passwordVar + "_FILE)"
	}
	return fmt.Sprintf("the server refused the user %q (%s) with the password from %s", t.user, t.userVar, t.passwordVar)
}

func (t *Target) who() string {
	if t.user == "" {
		return "an anonymous user"
	}
	return fmt.Sprintf("the user %q", t.user)
}

// netError says what a failed request was: an untrusted certificate, a server out of reach.
func (t *Target) netError(err error) error {
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown) || (errors.As(err, &cert) && strings.Contains(err.Error(), "unknown authority")):
		return fmt.Errorf("the server's certificate is not signed by a known CA: give its CA with ?ca=FILE in the URL: %w", err)
	case errors.As(err, &cert):
		return fmt.Errorf("the server's certificate is refused: %w", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case transient(err):
		return fmt.Errorf("network: cannot reach %s or the connection was lost: %w", t.cfg.Host, err)
	}
	return err
}
