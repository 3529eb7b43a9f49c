package gcs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A resumable session's URI from Google must be on Google's API host: its requests carry the
// bearer token. The refusal does not show the URI.
func TestGCSSessionOnAnotherHostRefused(t *testing.T) {
	tg := &Target{base: "https://storage.googleapis.com"}
	ok := "https://storage.googleapis.com/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=S1"
	if got, err := tg.sessionURI(ok); err != nil || got != ok {
		t.Errorf("Google's own session: %q, %v", got, err)
	}
	for _, loc := range []string{"https://elsewhere.example/upload?upload_id=S2", "http://storage.googleapis.com/upload?upload_id=S3"} {
		if _, err := tg.sessionURI(loc); err == nil || strings.Contains(err.Error(), "upload_id") {
			t.Errorf("session %s: %v, want a refusal without the URI", loc, err)
		}
	}
}

// listWith is a target whose listing is served by h.
func listWith(t *testing.T, h http.HandlerFunc) *Target {
	t.Setenv(CredentialsVar, "")
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tg, err := New(Config{Bucket: "b", Prefix: "p", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func listErr(tg *Target) error {
	for _, err := range tg.List(context.Background(), "") {
		if err != nil {
			return err
		}
	}
	return nil
}

// A listing page larger than guard.MaxPage, or a name longer than guard.MaxName, is refused:
// a hostile endpoint cannot make List hold what it likes.
func TestGCSListingCaps(t *testing.T) {
	long := listWith(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"items":[{"name":"p/`+strings.Repeat("a", 5000)+`","size":"1"}]}`)
	})
	if err := listErr(long); err == nil || !strings.Contains(err.Error(), "name of") {
		t.Errorf("a 5000-byte name: %v", err)
	}
	big := listWith(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"items":[`)
		pad := strings.Repeat(" ", 1<<20)
		for range 40 { // 40 MiB
			if _, err := io.WriteString(w, pad); err != nil {
				return
			}
		}
		io.WriteString(w, `]}`)
	})
	if err := listErr(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a 40 MiB page: %v", err)
	}
}

// An error whose body the server stops sending does not hang the request: it is given up
// after the stall bound, the refusal still told by its status.
func TestGCSErrorBodyStall(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	tg := listWith(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":`)
		w.(http.Flusher).Flush()
		<-hang
	})
	tg.stall = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- tg.Delete(context.Background(), "a") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("a refusal with a stalled body: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("an error's body the server stopped sending: still waiting after 10 s")
	}
}
