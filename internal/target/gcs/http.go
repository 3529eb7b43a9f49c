package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target/guard"
	"golang.org/x/oauth2"
)

// apiError is an answer of the JSON API that is not a success.
type apiError struct {
	Status  int
	Reason  string
	Message string
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Reason != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Reason, msg)
	}
	return fmt.Sprintf("%d: %s", e.Status, msg)
}

// readAPIError reads a failed response's JSON error ({"error": {"code", "message",
// "errors": [{"reason"}]}}), or its first line of text, given up after within.
func readAPIError(resp *http.Response, within time.Duration) *apiError {
	b := guard.ReadError(resp.Body, 16<<10, within)
	e := &apiError{Status: resp.StatusCode}
	var body struct {
		Error struct {
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		e.Message = body.Error.Message
		if len(body.Error.Errors) > 0 {
			e.Reason = body.Error.Errors[0].Reason
		}
		return e
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	e.Message = line
	return e
}

// retryable says whether a request that failed so is worth sending again: the server was
// busy or failed (429, 5xx, 408) or could not be reached. A refused token is not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == 429 || ae.Status == 408 || ae.Status >= 500
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && (re.Response.StatusCode == 429 || re.Response.StatusCode >= 500)
	}
	return err != nil
}

// backoff waits before attempt (1, 2, …): 0.5 s doubling up to 8 s. It says false when ctx
// ended first.
func (t *Target) backoff(ctx context.Context, attempt int) bool {
	d := min(t.retryBase<<(attempt-1), 8*time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

const attempts = 6

// do sends a request without a body, again with backoff while it fails transiently. A
// response other than 2xx is returned as an *apiError.
func (t *Target) do(ctx context.Context, method, u string, hdr http.Header) (*http.Response, error) {
	var err error
	for attempt := range attempts {
		if attempt > 0 && !t.backoff(ctx, attempt) {
			break
		}
		var resp *http.Response
		if resp, err = t.send(ctx, method, u, hdr, nil); err == nil {
			return resp, nil
		}
		if !retryable(ctx, err) {
			return nil, err
		}
	}
	return nil, err
}

// send sends one request; a status of 2xx or 308 (a resumable upload's "go on") is a success.
func (t *Target) send(ctx context.Context, method, u string, hdr http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, unURL(err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusPermanentRedirect {
		return nil, readAPIError(resp, t.stall)
	}
	return resp, nil
}

// unURL keeps only the method and the cause of net/http's *url.Error, which shows the URL: a
// resumable upload's session URI is a bearer credential.
func unURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &unreached{op: ue.Op, err: ue.Err}
	}
	return err
}

// unreached is a request that got no answer, as *url.Error says it without the URL: a
// net.Error, as that is.
type unreached struct {
	op  string
	err error
}

func (e *unreached) Error() string { return e.op + ": " + e.err.Error() }
func (e *unreached) Unwrap() error { return e.err }
func (e *unreached) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}
func (e *unreached) Temporary() bool { return false }

// getJSON GETs u and decodes its JSON answer (at most guard.MaxPage, cut when it makes no
// progress for t.stall) into v.
func (t *Target) getJSON(ctx context.Context, u string, v any) error {
	body, err := t.download(ctx, u)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(guard.Page(body)).Decode(v); err != nil {
		return fmt.Errorf("reading the answer of %s: %w", t.base, err)
	}
	return nil
}

// isObjectNotFound: a 404 about the object, not the bucket.
func isObjectNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && !isBucketMessage(ae.Message)
}

// isBucketMessage recognises GCS's "The specified bucket does not exist." (and an emulator's
// "bucket not found").
func isBucketMessage(msg string) bool {
	return strings.Contains(strings.ToLower(msg), "bucket")
}

func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// explain says which of authentication, permission, bucket, quota or network failed,
// naming the variable of the credentials, never their content.
func (t *Target) explain(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := tokenError(re)
		return fmt.Errorf("authentication failed: the token service refused the credentials from %s (%s)", t.credSource(), code)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized:
			return fmt.Errorf("authentication failed at %s (check the credentials from %s): %w", t.where(), t.credSource(), err)
		case ae.Status == http.StatusForbidden:
			return fmt.Errorf("permission denied on bucket %q: the credentials from %s lack a permission: %w", t.cfg.Bucket, t.credSource(), err)
		case ae.Status == http.StatusNotFound: // an object's 404 is handled before: this is the bucket's
			return fmt.Errorf("bucket %q does not exist at %s: create it first: %w", t.cfg.Bucket, t.where(), errNoBucket)
		case ae.Status == http.StatusTooManyRequests:
			return fmt.Errorf("rate limit or quota exceeded at %s (retried): %w", t.where(), err)
		}
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("cannot reach %s: %w", t.where(), err)
	}
	return err
}

// tokenError is what a token service said: its error code and description (never the token
// or the key).
func tokenError(re *oauth2.RetrieveError) string {
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" {
		var body struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code, desc = body.Error, body.Desc
		}
	}
	if code == "" && re.Response != nil {
		return re.Response.Status
	}
	if desc != "" {
		code += ": " + desc
	}
	return code
}

func (t *Target) where() string {
	if t.cfg.Endpoint == "" {
		return "Google Cloud Storage"
	}
	return t.cfg.Endpoint
}

func (t *Target) credSource() string {
	if t.credVar == "" {
		return "Application Default Credentials (or set " + CredentialsVar + ")"
	}
	return "the key file " + t.credVar + " names"
}
