package gcs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Red team: a network error on a chunk of a resumable upload is returned as net/http's
// *url.Error, which shows the session URI, upload_id and all. GCS documents the session URI
// as a bearer credential (whoever holds it may upload to the session for a week): it reaches
// the Put's error, hence the logs and the sidecar's status. azure strips the url.Error; gcs
// does not.
func TestRedTeamGCSSessionURIInError(t *testing.T) {
	t.Setenv(CredentialsVar, "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			jsonError(w, 404, "notFound", "No such object: b/p/a")
		case http.MethodPost:
			w.Header().Set("Location", "/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=SESSION-SECRET-42")
		default: // every chunk: the connection breaks
			panic(http.ErrAbortHandler)
		}
	}))
	defer srv.Close()
	tg, err := New(Config{Bucket: "b", Endpoint: srv.URL, ChunkSize: chunkUnit})
	if err != nil {
		t.Fatal(err)
	}
	tg.retryBase = time.Millisecond
	_, err = tg.Put(context.Background(), "p/a", strings.NewReader("data"))
	if err == nil {
		t.Fatal("Put through a breaking connection succeeded")
	}
	if strings.Contains(err.Error(), "SESSION-SECRET-42") {
		t.Errorf("the Put's error shows the upload session's URI: %v", err)
	}
}

// Red team: the client follows redirects, and oauth2.Transport signs every request it sends,
// the redirected one included: an endpoint that answers 302 to another host (a hostile or
// misconfigured emulator, a proxy) receives the service account's bearer token. net/http's
// own stripping of Authorization across hosts does not apply: the header is added below it.
func TestRedTeamGCSTokenFollowsRedirect(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"ya29.TOKEN-SECRET","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	var leaked atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
		io.WriteString(w, "data")
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusFound)
	}))
	defer api.Close()
	t.Setenv(CredentialsVar, serviceAccountKey(t, tokens.URL))
	tg, err := New(Config{Bucket: "b", Endpoint: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := tg.Get(context.Background(), "p/a"); err == nil {
		rc.Close()
	}
	if got, _ := leaked.Load().(string); strings.Contains(got, "TOKEN-SECRET") {
		t.Errorf("another host, reached by a redirect, received the bearer token: %q", got)
	}
}

// Red team: a server that sends an object's headers and then stops sending hangs a restore
// for ever (no stall bound on a body; ResponseHeaderTimeout covers the headers only).
func TestRedTeamGCSGetStall(t *testing.T) {
	t.Setenv(CredentialsVar, "")
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "01234")
		w.(http.Flusher).Flush()
		<-hang
	}))
	defer srv.Close()
	defer close(hang)
	tg, err := New(Config{Bucket: "b", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tg.stall = 300 * time.Millisecond // the guard's bound (guard.StallTimeout), short for the test
	rc, err := tg.Get(context.Background(), "p/a")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(rc); done <- err }()
	select {
	case err := <-done:
		t.Log("read ended:", err)
	case <-time.After(10 * time.Second):
		t.Errorf("a read from a server that stopped sending: still waiting after 10 s (no stall bound)")
	}
}

// Red team: a listing whose nextPageToken never changes (a broken emulator, a hostile
// endpoint) never ends: List asks for the same page for ever, yielding the same keys again.
func TestRedTeamGCSListTokenLoops(t *testing.T) {
	t.Setenv(CredentialsVar, "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"items":[{"name":"p/a","size":"1","updated":"2026-01-01T00:00:00Z"}],"nextPageToken":"same"}`)
	}))
	defer srv.Close()
	tg, err := New(Config{Bucket: "b", Prefix: "p", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range tg.List(context.Background(), "") {
		if err != nil {
			return // refused: fine
		}
		if n++; n > 2000 {
			t.Fatalf("List yielded %d keys from a listing whose page token never changes, without an error", n)
		}
	}
}
