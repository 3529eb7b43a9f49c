package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

// hookReceiver is a real HTTP server on the host that records every request; paths under
// /broken answer 500.
type hookReceiver struct {
	mu   sync.Mutex
	reqs []hookRequest
	addr string
}

type hookRequest struct {
	Method, URI, Body string
	Header            http.Header
}

func startHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{addr: l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{Method: r.Method, URI: r.URL.RequestURI(), Body: string(b), Header: r.Header.Clone()})
		h.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/broken") {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func (h *hookReceiver) url(path string) string { return "http://" + h.addr + path }

// matching returns the requests whose URI starts with prefix.
func (h *hookReceiver) matching(prefix string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.reqs {
		if strings.HasPrefix(r.URI, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// smtpSink is a minimal SMTP server on the host that keeps every message it receives.
type smtpSink struct {
	mu   sync.Mutex
	mail []string // "FROM -> TO\n" + the DATA
	addr string
}

func startSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{addr: l.Addr().String()}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return s
}

func (s *smtpSink) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(line string) { _, _ = io.WriteString(conn, line+"\r\n") }
	say("220 sink ESMTP")
	var from, to string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 sink")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			from = strings.TrimSpace(line[len("MAIL FROM:"):])
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			to = strings.TrimSpace(line[len("RCPT TO:"):])
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var body strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				body.WriteString(l)
			}
			s.mu.Lock()
			s.mail = append(s.mail, from+" -> "+to+"\n"+body.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mail...)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSidecarNotifications runs a sidecar whose jobs succeed, fail, and ping a check that
// is down, with notification URLs of four services (a generic webhook, ntfy, Gotify, SMTP)
// pointing at a real HTTP receiver: every ping and message arrives in its service's form,
// successes are not sent at the default level, a ping that fails never fails the backup and
// is counted, and no token of any URL appears in the logs, status or metrics. E-mail goes to a
// real SMTP server (a sink the test runs).
func TestSidecarNotifications(t *testing.T) {
	t.Parallel()
	h := startHookReceiver(t)
	mail := startSMTPSink(t)
	p := newProject(t)
	const secret = "5ecret" // every token below holds it
	good := p.volumeService("good", "docker-backup.schedule=@every 2s", "docker-backup.retention=2",
		"docker-backup.ping="+h.url("/ping/good-uuid-"+secret))
	p.volumeService("bad", "docker-backup.schedule=@every 3s", `docker-backup.pre=sh -c "echo the disk is full >&2; exit 3"`,
		"docker-backup.notify=ops", "docker-backup.ping="+h.url("/ping/bad-uuid-"+secret))
	p.volumeService("flaky", "docker-backup.schedule=@every 3s", "docker-backup.notify=off",
		"docker-backup.ping="+h.url("/broken/flaky-uuid-"+secret))
	p.volumeService("typo", "docker-backup.schedule=@daily", "docker-backup.notify=pager")
	docker(t, "exec", good, "sh", "-c", "echo data > /data/file")

	dir := t.TempDir()
	gotifyToken := "Agotify" + secret + "xy" // Gotify's tokens: 15 characters starting with A
	files := map[string]string{
		"ops.urls": "ntfy://" + h.addr + "/ops-topic-" + secret + "?scheme=http\ngotify://" + h.addr + "/" + gotifyToken + "?disabletls=yes\n" +
			"smtp://backup:pw-" + secret + "@" + mail.addr + "/?from=backup@example.com&to=ops@example.com&auth=None&encryption=None&usestarttls=no\n",
		"message.tmpl": "{{.Title}} [on {{.Host}}] {{.FirstLine}}",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	sidecar, _ := startSidecar(t, p, "--network", "host", "-v", dir+":/run/notify:ro",
		"-e", fmt.Sprintf("DOCKER_BACKUP_LISTEN=127.0.0.1:%d", port),
		"-e", "DOCKER_BACKUP_NOTIFY_URLS=generic+"+h.url("/hook/default-"+secret),
		"-e", "DOCKER_BACKUP_NOTIFY_URLS_OPS_FILE=/run/notify/ops.urls",
		"-e", "DOCKER_BACKUP_NOTIFY_TEMPLATE_FILE=/run/notify/message.tmpl")

	waitRuns(t, p.name, "good", "default", 2, 2*time.Minute)
	waitRuns(t, p.name, "flaky", "default", 1, time.Minute)
	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))

	// Dead-man pings: start and success of each run of good, paired by rid.
	rid := regexp.MustCompile(`rid=([0-9a-f-]{36})`)
	eventually(t, 30*time.Second, "good's pings", func() error {
		starts, ends := map[string]bool{}, 0
		for _, r := range h.matching("/ping/good-uuid-" + secret) {
			m := rid.FindStringSubmatch(r.URI)
			switch {
			case r.Method != http.MethodPost || m == nil:
				return fmt.Errorf("a ping %s %s", r.Method, r.URI)
			case strings.HasPrefix(r.URI, "/ping/good-uuid-"+secret+"/start?"):
				starts[m[1]] = true
			case strings.HasPrefix(r.URI, "/ping/good-uuid-"+secret+"/fail"):
				return fmt.Errorf("good pinged a failure: %s", r.Body)
			case starts[m[1]]:
				ends++
			}
		}
		if ends < 2 {
			return fmt.Errorf("%d successful runs pinged after their start", ends)
		}
		return nil
	})
	// bad: /fail with the run's log (the hook's stderr and exit code) as the body.
	eventually(t, 30*time.Second, "bad's failure ping", func() error {
		for _, r := range h.matching("/ping/bad-uuid-" + secret + "/fail?rid=") {
			if strings.Contains(r.Body, "the disk is full") && strings.Contains(r.Body, "exit") && strings.Contains(r.Body, "3") {
				return nil
			}
		}
		return fmt.Errorf("no failure ping with the hook's output: %+v", h.matching("/ping/bad-uuid-"))
	})
	subject := p.name + "/bad/default"
	// bad's notifications go to its set, ops: ntfy (POST /TOPIC) and Gotify (POST
	// /message?token=...), in the template's words.
	eventually(t, 30*time.Second, "ops notifications", func() error {
		ntfy, gotify := h.matching("/ops-topic-"+secret), h.matching("/message?token="+gotifyToken)
		if len(ntfy) == 0 || len(gotify) == 0 {
			return fmt.Errorf("ntfy %d, gotify %d requests", len(ntfy), len(gotify))
		}
		want := "docker-backup: backup of " + subject + " failed [on " + host + "]"
		for _, r := range []hookRequest{ntfy[0], gotify[0]} {
			if !strings.Contains(r.Body, want) || !strings.Contains(r.Body, "the disk is full") {
				return fmt.Errorf("%s %s: body %q, want %q and the error", r.Method, r.URI, r.Body, want)
			}
		}
		// And by e-mail, the title as the subject.
		for _, m := range mail.messages() {
			if strings.Contains(m, "<backup@example.com> -> <ops@example.com>") && strings.Contains(m, "Subject: docker-backup: backup of "+subject+" failed") &&
				strings.Contains(m, "the disk is full") {
				return nil
			}
		}
		return fmt.Errorf("no e-mail about bad: %q", mail.messages())
	})
	// The default set: the invalid label, once; no success (level error), nothing of bad
	// (ops) nor flaky (off).
	eventually(t, 30*time.Second, "the label error's notification", func() error {
		for _, r := range h.matching("/hook/default-" + secret) {
			if strings.Contains(r.Body, "invalid label on "+p.name) && strings.Contains(r.Body, "pager") {
				return nil
			}
		}
		return fmt.Errorf("none yet: %+v", h.matching("/hook/"))
	})
	for _, r := range h.matching("/hook/default-" + secret) {
		if strings.Contains(r.Body, "succeeded") || strings.Contains(r.Body, "/bad/") || strings.Contains(r.Body, "/flaky/") {
			t.Errorf("the default set got %q", r.Body)
		}
	}

	// The flaky check is down: its backups succeed all the same, the pings are retried and
	// counted as failed.
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	eventually(t, time.Minute, "failed pings counted", func() error {
		body := httpGet(t, metricsURL)
		m := regexp.MustCompile(`docker_backup_notifications_total\{kind="ping",result="failed"\} (\d+)`).FindStringSubmatch(body)
		if m == nil || m[1] == "0" {
			return fmt.Errorf("no failed ping counted yet")
		}
		if !strings.Contains(body, `docker_backup_notifications_total{kind="notify",result="sent"}`) {
			return fmt.Errorf("no notify series")
		}
		return nil
	})
	if n := len(h.matching("/broken/flaky-uuid-" + secret)); n < 2 {
		t.Errorf("the down check was tried %d times, want retries", n)
	}

	// No token anywhere the sidecar speaks.
	logs := containerLogs(t, sidecar)
	mustContain(t, logs, "ping failed; the backup is not affected")
	for what, text := range map[string]string{"logs": logs, "status": backup(t, "status", "-p", p.name),
		"metrics": httpGet(t, metricsURL), "status API": docker(t, "exec", sidecar, "/sidecar", "ctl", "GET", control.PathStatus)} {
		for _, s := range []string{secret, url.QueryEscape(secret)} {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("the %s show a token: …%s…", what, text[max(0, i-80):min(len(text), i+20)])
			}
		}
	}
}
