package webdav

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Red team: a server that sends a listing's headers and then never its body hangs List for
// ever: PROPFIND's body is read without the stall guard (only the headers are bounded, by
// ResponseHeaderTimeout), so the sidecar's retention (and `docker backup list`) never ends.
func TestRedTeamWebDAVListBodyStall(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "stall")
	tg.stall = 300 * time.Millisecond
	hang := make(chan struct{})
	defer close(hang)
	s.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "PROPFIND" {
			return false
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMultiStatus)
		_, _ = io.WriteString(w, `<?xml version="1.0"?><multistatus xmlns="DAV:">`)
		w.(http.Flusher).Flush()
		<-hang
		return true
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for _, e := range tg.List(context.Background(), "") {
			if e != nil {
				err = e
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("List of a stalled listing: no error")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("List of a listing whose body never comes: still waiting after 10 s (stall timeout %v)", tg.stall)
	}
}

// Red team: a MOVE (or DELETE, MKCOL, an error status) answered with headers and then a body
// that never comes hangs the Put for ever: drain reads up to 64 KiB of every response's body
// with no deadline.
func TestRedTeamWebDAVDrainStall(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "stall")
	tg.stall = 300 * time.Millisecond
	hang := make(chan struct{})
	defer close(hang)
	s.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "MOVE" {
			return false
		}
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "moved")
		w.(http.Flusher).Flush()
		<-hang
		return true
	}
	done := make(chan error, 1)
	go func() {
		_, err := tg.Put(context.Background(), "a/b", strings.NewReader("payload"))
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("Put whose MOVE answer's body never ends: still waiting after 10 s (stall timeout %v)", tg.stall)
	}
}
