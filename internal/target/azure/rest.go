package azure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/target/guard"
)

// apiVersion is the Blob service REST version the requests speak (x-ms-version).
const apiVersion = "2021-08-06"

// request is one call of the Blob service REST API.
type request struct {
	method string
	blob   string // the blob's name (unescaped), "" for a call on the container
	query  url.Values
	header http.Header
	body   []byte
	pace   *bandwidth.Limiter // paces the body as it is sent (nil: full speed)
}

// apiError is an answer of the service that is not a success.
type apiError struct {
	Status  int
	Code    string // x-ms-error-code, e.g. "BlobNotFound"
	Message string // its first line
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("Azure answered %d %s", e.Status, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func errorCode(err error) (int, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status, ae.Code
	}
	return 0, ""
}

// do sends r, retrying with backoff while the service cannot be reached or answers that it is
// busy; a response with a status of 300 or more becomes an *apiError (its body closed).
func (t *Target) do(ctx context.Context, r request) (*http.Response, error) {
	var err error
	for attempt, delay := 0, 500*time.Millisecond; ; attempt, delay = attempt+1, min(delay*2, 8*time.Second) {
		var resp *http.Response
		resp, err = t.send(ctx, r)
		if err == nil {
			if resp.StatusCode < 300 {
				return resp, nil
			}
			err = readError(resp, t.stall)
		}
		if attempt >= 4 || !transient(ctx, err) {
			return nil, err
		}
		t.log.Debug("azure: retrying", "target", t.String(), "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}

// transient says whether a failed call may succeed when tried again.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if status, _ := errorCode(err); status != 0 {
		return status == 408 || status == 429 || status >= 500
	}
	return true // the service was not reached, or the connection broke
}

// send makes one attempt of r.
func (t *Target) send(ctx context.Context, r request) (*http.Response, error) {
	u := t.endpoint + "/" + t.cfg.Container
	if r.blob != "" {
		u += "/" + escapeBlob(r.blob)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("azure request: %w", err)
	}
	req.URL.RawQuery = r.query.Encode()
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", apiVersion)
	req.ContentLength = int64(len(r.body))
	if len(r.body) > 0 {
		var body io.Reader = bytes.NewReader(r.body)
		if r.pace != nil {
			body = r.pace.Reader(ctx, body)
		}
		req.Body = io.NopCloser(body)
	}
	if t.creds.key != nil {
		req.Header.Set("Authorization", "SharedKey "+t.creds.account+":"+sign(t.creds.key, t.creds.account, req))
	} else if req.URL.RawQuery == "" {
		req.URL.RawQuery = t.creds.sas
	} else {
		req.URL.RawQuery += "&" + t.creds.sas
	}
	resp, err := t.client.Do(req)
	if err != nil {
		// A url.Error shows the URL, which holds a SAS token: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", t.endpoint, err)
	}
	return resp, nil
}

// escapeBlob escapes each part of a blob's name for the URL's path.
func escapeBlob(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// readError reads the service's error from resp (the x-ms-error-code header, which a HEAD
// answer also carries, and the XML body's message, given up after within) and closes it.
func readError(resp *http.Response, within time.Duration) error {
	e := &apiError{Status: resp.StatusCode, Code: resp.Header.Get("x-ms-error-code")}
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if b := guard.ReadError(resp.Body, 64<<10, within); xml.Unmarshal(b, &body) == nil {
		e.Code = first(e.Code, body.Code)
		e.Message, _, _ = strings.Cut(strings.TrimSpace(body.Message), "\n")
	}
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
	}
	return e
}

// sign is the SharedKey signature of req: an HMAC-SHA256, with the account key, of the
// request's canonical form.
func sign(key []byte, account string, req *http.Request) string {
	h := req.Header
	length := ""
	if req.ContentLength > 0 {
		length = strconv.FormatInt(req.ContentLength, 10)
	}
	parts := []string{req.Method, h.Get("Content-Encoding"), h.Get("Content-Language"), length,
		h.Get("Content-MD5"), h.Get("Content-Type"), "", h.Get("If-Modified-Since"), h.Get("If-Match"),
		h.Get("If-None-Match"), h.Get("If-Unmodified-Since"), h.Get("Range")}
	s := strings.Join(parts, "\n") + "\n" + canonicalHeaders(h) + canonicalResource(account, req.URL)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// canonicalHeaders are the x-ms- headers, lowercase and sorted, one "name:value\n" each.
func canonicalHeaders(h http.Header) string {
	var names []string
	for k := range h {
		if k = strings.ToLower(k); strings.HasPrefix(k, "x-ms-") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + ":" + strings.TrimSpace(h.Get(k)) + "\n")
	}
	return b.String()
}

// canonicalResource is /ACCOUNT/PATH, then each query parameter, sorted, as "\nname:values".
func canonicalResource(account string, u *url.URL) string {
	var b strings.Builder
	b.WriteString("/" + account + u.EscapedPath())
	q := u.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := q[k]
		sort.Strings(v)
		b.WriteString("\n" + strings.ToLower(k) + ":" + strings.Join(v, ","))
	}
	return b.String()
}

// newHTTPClient has timeouts for connecting and for the service's first answer, none for a
// whole body (a blob streams for as long as it takes).
func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}}
}
