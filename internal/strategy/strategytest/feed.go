package strategytest

import (
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Feed writes s to c in small pieces, as a stream arrives.
func Feed(t *testing.T, c strategy.Count, b []byte) *artifact.Contents {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 7)
		if _, err := c.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	got, err := c.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return got
}
