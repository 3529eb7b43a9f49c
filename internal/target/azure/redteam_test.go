package azure

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// brokenRead sends the first 5 of 10 bytes of a blob and breaks the connection; etag "" sends
// none.
func brokenRead(etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "01234")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// Red team: a resumed read trusts that the answer starts at the offset asked for. A server
// (or a proxy between) that ignores x-ms-range answers 200 with the whole blob: the reader
// appends it after the bytes already read, and the restore reads 15 bytes of a 10-byte blob
// without an error. The answer's status (206) and Content-Range are not checked.
func TestRedTeamAzureResumeIgnoresRange(t *testing.T) {
	whole := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, "0123456789") // 200, not 206: the range was ignored
	}
	tg, _ := fake(t, brokenRead(`"v1"`), whole)
	rc, err := tg.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if err == nil && string(b) != "0123456789" {
		t.Errorf("a resume answered with the whole blob read %q without an error", b)
	}
}

// Red team: when the first answer has no ETag, a resumed read is sent with no If-Match and
// splices the rest of whatever blob has that name now onto the bytes already read.
func TestRedTeamAzureResumeWithoutETag(t *testing.T) {
	other := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Match") == "" {
			w.Header().Set("ETag", `"v2"`)
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "XXXXX") // the replaced blob's bytes
			return
		}
		w.WriteHeader(http.StatusPreconditionFailed)
	}
	tg, _ := fake(t, brokenRead(""), other)
	rc, err := tg.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err == nil {
		t.Errorf("a read resumed without a version read %q from another blob without an error", b)
	}
}

// Red team: a listing whose NextMarker never advances (a broken or hostile endpoint) never
// ends: List asks for the same page for ever, yielding the same keys again (out of order).
func TestRedTeamAzureListMarkerLoops(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<?xml version="1.0"?><EnumerationResults><Blobs><Blob><Name>p/a</Name>`+
			`<Properties><Content-Length>1</Content-Length></Properties></Blob></Blobs><NextMarker>m</NextMarker></EnumerationResults>`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AZURE_STORAGE_ACCOUNT", "acct")
	t.Setenv("AZURE_STORAGE_KEY", "a2V5")
	tg, err := New(Config{Container: "bk", Prefix: "p", Endpoint: srv.URL + "/acct", BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range tg.List(context.Background(), "") {
		if err != nil {
			return // refused: fine
		}
		if n++; n > 2000 {
			t.Fatalf("List yielded %d keys from a listing whose marker never advances, without an error", n)
		}
	}
}

// Red team: a server that sends a blob's headers and then stops sending hangs a restore for
// ever: the client bounds the wait for headers only (ResponseHeaderTimeout), never a body
// that makes no progress (webdav has a stall guard; azure has none).
func TestRedTeamAzureGetStall(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	stuck := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "01234")
		w.(http.Flusher).Flush()
		<-hang
	}
	tg, _ := fake(t, stuck)
	tg.stall = 300 * time.Millisecond // the guard's bound (guard.StallTimeout), short for the test
	rc, err := tg.Get(context.Background(), "a")
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
