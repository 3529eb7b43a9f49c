package azure

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
func TestAzureListingCaps(t *testing.T) {
	long, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<?xml version="1.0"?><EnumerationResults><Blobs><Blob><Name>`+strings.Repeat("a", 5000)+
			`</Name></Blob></Blobs><NextMarker/></EnumerationResults>`)
	})
	if err := listErr(long); err == nil || !strings.Contains(err.Error(), "name of") {
		t.Errorf("a 5000-byte name: %v", err)
	}
	big, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<?xml version="1.0"?><EnumerationResults><Blobs>`)
		pad := strings.Repeat(" ", 1<<20)
		for range 40 { // 40 MiB
			if _, err := io.WriteString(w, pad); err != nil {
				return
			}
		}
		io.WriteString(w, `</Blobs></EnumerationResults>`)
	})
	if err := listErr(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a 40 MiB page: %v", err)
	}
}

// An error whose body the server stops sending does not hang the request: it is given up
// after the stall bound, the refusal still told by its header.
func TestAzureErrorBodyStall(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	tg, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-error-code", "LeaseIdMissing")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, "<?xml")
		w.(http.Flusher).Flush()
		<-hang
	})
	tg.stall = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- tg.Delete(context.Background(), "a") }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "LeaseIdMissing") {
			t.Errorf("a refusal with a stalled body: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("an error's body the server stopped sending: still waiting after 10 s")
	}
}
