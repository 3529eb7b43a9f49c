package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records what arrives; paths under /broken answer 500.
type receiver struct {
	mu   sync.Mutex
	got  []string
	srv  *httptest.Server
	hits map[string]int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{hits: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Method+" "+req.URL.RequestURI()+" "+string(b))
		r.hits[req.URL.Path]++
		r.mu.Unlock()
		if strings.HasPrefix(req.URL.Path, "/broken") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func TestNotifyLevelsSetsAndTemplate(t *testing.T) {
	r := newReceiver(t)
	var mu sync.Mutex
	counts := map[string]int{}
	n, err := New(Config{
		Sets: map[string][]string{
			DefaultSet: {"generic+" + r.srv.URL + "/hook/default-token-1234"},
			"ops":      {"generic+" + r.srv.URL + "/hook/ops-token-5678"},
		},
		Host: "box", Template: `{{.Title}} | {{.FirstLine}} | {{.Host}}`,
		Counted: func(kind string, ok bool) {
			mu.Lock()
			counts[kind+map[bool]string{true: " ok", false: " failed"}[ok]]++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify("", Event{Kind: "backup", Project: "p", Service: "db", Job: "nightly"}) // a success: not sent at level error
	n.Notify("", Event{Kind: "backup", Project: "p", Service: "db", Job: "nightly", Failed: true, Error: "pg_dump exited 1\nmore"})
	n.Notify("ops", Event{Kind: "verify", Project: "p", Service: "app", Failed: true, Error: "tree digest differs"})
	n.Notify(Off, Event{Kind: "backup", Project: "p", Service: "quiet", Failed: true})
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(r.all(), "\n")
	for _, want := range []string{
		"/hook/default-token-1234 docker-backup: backup of p/db/nightly failed | pg_dump exited 1 | box",
		"/hook/ops-token-5678 docker-backup: verify of p/app failed | tree digest differs | box",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the receiver lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "succeeded") || strings.Contains(got, "quiet") {
		t.Errorf("a success or an off job was sent:\n%s", got)
	}
	if counts["notify ok"] != 2 {
		t.Errorf("counts %v, want 2 notify ok", counts)
	}
}

func TestPingsAndFailures(t *testing.T) {
	r := newReceiver(t)
	var logs strings.Builder
	var mu sync.Mutex
	counts := map[bool]int{}
	n, err := New(Config{Tries: 2, FirstRetry: 10 * time.Millisecond,
		Counted: func(kind string, ok bool) { mu.Lock(); counts[ok]++; mu.Unlock() },
		Log:     slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	hc := r.srv.URL + "/ping/3f1c-uuid-secret"
	n.Ping(hc, PingStart, "rid-1", "")
	n.Ping(hc, PingFail, "rid-1", "line 1\nerror: pg_dump exited 1")
	n.Ping(hc, PingSuccess, "rid-2", "")
	kuma := r.srv.URL + "/api/push/kumaTOKEN99"
	n.Ping(kuma, PingStart, "", "")
	n.Ping(kuma, PingFail, "", "error: the hook failed")
	broken := r.srv.URL + "/broken/uuid-of-broken-check"
	n.Ping(broken, PingSuccess, "", "")
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(r.all(), "\n")
	for _, want := range []string{
		"POST /ping/3f1c-uuid-secret/start?rid=rid-1 ",
		"POST /ping/3f1c-uuid-secret/fail?rid=rid-1 line 1\nerror: pg_dump exited 1",
		"POST /ping/3f1c-uuid-secret?rid=rid-2 ",
		"GET /api/push/kumaTOKEN99?msg=error%3A+the+hook+failed&status=down",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the receiver lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Count(got, "/api/push/") != 1 {
		t.Errorf("a start was pinged to Uptime Kuma:\n%s", got)
	}
	if r.hits["/broken/uuid-of-broken-check"] != 2 {
		t.Errorf("the broken check was tried %d times, want 2", r.hits["/broken/uuid-of-broken-check"])
	}
	if counts[false] != 1 || counts[true] != 5 {
		t.Errorf("counted %v, want 5 ok and 1 failed", counts)
	}
	if l := logs.String(); !strings.Contains(l, "ping failed") || strings.Contains(l, "uuid-of-broken-check") {
		t.Errorf("the failure is not logged, or its URL is:\n%s", l)
	}
}

func TestRedact(t *testing.T) {
	u := "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@channel-name,-1001234"
	err := CheckURL("slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@nowhere-not-a-valid")
	if err != nil && strings.Contains(err.Error(), "Webc4MAvoacrpPakR8phF0zi") {
		t.Errorf("CheckURL shows the token: %v", err)
	}
	msg := `sending to "` + u + `" failed: token AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw refused`
	red := Redact(msg, Secrets(u))
	if strings.Contains(red, "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw") || strings.Contains(red, "110201543") {
		t.Errorf("Redact left a secret: %s", red)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) succeeded")
	}
	if err := CheckURL("nosuchservice://x"); err == nil {
		t.Error("an unknown service was accepted")
	}
}

func TestTail(t *testing.T) {
	tail := NewTail(2)
	log := slogHandler(tail)
	for _, m := range []string{"one", "two", "three"} {
		log.Info(m)
	}
	if s := tail.String(); strings.Contains(s, "one") || !strings.Contains(s, "two") || !strings.Contains(s, "three") {
		t.Errorf("tail = %q", s)
	}
}

func TestSMTPTimeout(t *testing.T) {
	for in, want := range map[string]string{
		"smtp://h:25/?to=a@b&from=c@d":             "smtp://h:25/?to=a@b&from=c@d&timeout=10s",
		"smtp://h:25/?to=a@b&from=c@d&timeout=30s": "smtp://h:25/?to=a@b&from=c@d&timeout=30s",
		"smtp://h:25/?to=a@b&from=c@d&Timeout=30s": "smtp://h:25/?to=a@b&from=c@d&Timeout=30s",
	} {
		if got := withSMTPTimeout(in); got != want {
			t.Errorf("withSMTPTimeout(%s) = %s, want %s", in, got, want)
		}
	}
}
