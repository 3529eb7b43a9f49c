package target

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// A later read to the end with other bytes fails with ErrChanged; the same bytes read fine,
// and a read that stops early neither records nor checks.
func TestSameBytes(t *testing.T) {
	var s SameBytes
	read := func(body string, limit int64) error {
		rc := s.Reader(io.NopCloser(strings.NewReader(body)), "k")
		defer rc.Close()
		_, err := io.Copy(io.Discard, io.LimitReader(rc, limit))
		return err
	}
	if err := read("first", 2); err != nil {
		t.Fatal(err)
	}
	if err := read("other", 100); err != nil {
		t.Fatalf("first whole read: %v", err)
	}
	if err := read("other", 100); err != nil {
		t.Fatalf("the same bytes again: %v", err)
	}
	if err := read("EVILr", 100); !errors.Is(err, ErrChanged) {
		t.Fatalf("other bytes: %v, want ErrChanged", err)
	}
}
