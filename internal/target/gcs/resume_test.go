package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// resumableServer keeps one resumable upload session as GCS documents it: 308 with the Range
// it holds, a status query ("bytes */*"), 200 once the total is stored. Its second data
// request stores half its body and fails with 503.
type resumableServer struct {
	mu       sync.Mutex
	stored   []byte
	puts     int
	queries  int
	complete bool
}

func (s *resumableServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet: // the look-up before an upload
		jsonError(w, 404, "notFound", "No such object: b/p/a")
	case r.Method == http.MethodPost:
		w.Header().Set("Location", "http://elsewhere.invalid/upload/session/1?upload_id=x")
	case r.Method == http.MethodPut:
		rng := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
		span, total, _ := strings.Cut(rng, "/")
		body, _ := io.ReadAll(r.Body)
		if span == "*" {
			s.queries++
		} else {
			first, _, _ := strings.Cut(span, "-")
			if n, _ := strconv.Atoi(first); n != len(s.stored) {
				jsonError(w, 400, "invalid", fmt.Sprintf("offset %d, holding %d", n, len(s.stored)))
				return
			}
			if s.puts++; s.puts == 2 {
				s.stored = append(s.stored, body[:len(body)/2]...)
				jsonError(w, 503, "backendError", "Backend Error")
				return
			}
			s.stored = append(s.stored, body...)
		}
		if total != "*" && total == strconv.Itoa(len(s.stored)) {
			s.complete = true
			fmt.Fprintf(w, `{"name":"p/a","size":"%d"}`, len(s.stored))
			return
		}
		if len(s.stored) > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(s.stored)-1))
		}
		w.WriteHeader(http.StatusPermanentRedirect)
	}
}

// A chunk that fails midway is resumed from what the session holds: the object is whole.
func TestGCSResumesAFailedChunk(t *testing.T) {
	t.Setenv(CredentialsVar, "")
	s := &resumableServer{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tg, err := New(Config{Bucket: "b", Endpoint: srv.URL, ChunkSize: chunkUnit})
	if err != nil {
		t.Fatal(err)
	}
	tg.retryBase = time.Millisecond
	body := make([]byte, 3*chunkUnit+1000)
	rand.Read(body)
	n, err := tg.Put(context.Background(), "p/a", io.MultiReader(bytes.NewReader(body)))
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Put = %d, %v", n, err)
	}
	if !s.complete || !bytes.Equal(s.stored, body) || s.queries != 1 {
		t.Errorf("complete %v, %d bytes stored of %d (equal: %v), %d status queries", s.complete, len(s.stored), len(body),
			bytes.Equal(s.stored, body), s.queries)
	}
}
