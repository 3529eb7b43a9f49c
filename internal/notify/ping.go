package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cenkalti/backoff/v5"
)

// Phase is the moment of a run a ping reports.
type Phase string

const (
	PingStart   Phase = "start"
	PingSuccess Phase = "success"
	PingFail    Phase = "fail"
)

// MaxPingBody bounds the log a failure ping carries.
const MaxPingBody = 10 << 10

// PingRequest is the request a ping sends: healthchecks.io's protocol (URL/start, URL,
// URL/fail, the log as the body, rid pairing start and end), or, for an Uptime Kuma push
// URL (/api/push/TOKEN), status=up or status=down with msg (a start is not sent: nil).
func PingRequest(ctx context.Context, rawURL string, phase Phase, runID, body string) (*http.Request, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, err
	}
	if strings.Contains(u.Path, "/api/push/") {
		if phase == PingStart {
			return nil, nil
		}
		q := u.Query()
		status, msg := "up", "OK"
		if phase == PingFail {
			status, msg = "down", errorLine(body)
		}
		q.Set("status", status)
		q.Set("msg", msg)
		u.RawQuery = q.Encode()
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	switch phase {
	case PingStart:
		u.Path = strings.TrimSuffix(u.Path, "/") + "/start"
	case PingFail:
		u.Path = strings.TrimSuffix(u.Path, "/") + "/fail"
	}
	if runID != "" {
		q := u.Query()
		q.Set("rid", runID)
		u.RawQuery = q.Encode()
	}
	if len(body) > MaxPingBody {
		body = body[len(body)-MaxPingBody:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	return req, nil
}

// errorLine is the line of s that says what failed (the first with "error" or "failed"),
// else its first line, cut to 200 bytes.
func errorLine(s string) string {
	s = strings.TrimSpace(s)
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "error") || strings.Contains(l, "failed") {
			s = l
			break
		}
	}
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

// Ping reports a phase of a run to a dead-man URL in the background. runID pairs a run's
// start with its end; body is the log a failure carries. A ping that fails is retried, then
// logged (without its URL) and counted; it never fails the run.
func (n *Notifier) Ping(rawURL string, phase Phase, runID, body string) {
	if n == nil || rawURL == "" {
		return
	}
	secrets := Secrets(rawURL)
	n.enqueue("ping", func(ctx context.Context) {
		err := n.retry(ctx, func() error {
			req, err := PingRequest(ctx, rawURL, phase, runID, body)
			if err != nil {
				return backoff.Permanent(err)
			}
			if req == nil {
				return nil
			}
			resp, err := n.cfg.Client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)
			}
			return nil
		})
		n.cfg.Counted("ping", err == nil)
		if err != nil {
			n.log.Warn("ping failed; the backup is not affected", "phase", string(phase), "error", Redact(err.Error(), secrets))
		}
	})
}
