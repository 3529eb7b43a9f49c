package azure

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
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
