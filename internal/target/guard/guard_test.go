package guard

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// A listing advances: names strictly increasing, markers new, empty pages bounded, names short.
func TestListing(t *testing.T) {
	var l Listing
	for _, n := range []string{"a", "b", "c"} {
		if err := l.Name(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Next("m1", 3); err != nil {
		t.Fatal(err)
	}
	if err := l.Name("c"); err == nil {
		t.Error("a repeated name was accepted")
	}
	if err := l.Name("b"); err == nil {
		t.Error("a name going back was accepted")
	}
	if err := l.Next("m1", 1); err == nil {
		t.Error("a marker that did not change was accepted")
	}
	if err := l.Name(strings.Repeat("z", MaxName+1)); err == nil {
		t.Error("a name longer than MaxName was accepted")
	}
	var e Listing
	var err error
	for i := 0; err == nil && i < 2*MaxEmptyPages; i++ {
		err = e.Next(strings.Repeat("m", i+1), 0)
	}
	if err == nil {
		t.Errorf("%d empty pages in a row were accepted", 2*MaxEmptyPages)
	}
	if err := e.Next("", 0); err != nil {
		t.Errorf("the end of a listing: %v", err)
	}
}

// Azure's order (UTF-16 code units) lists an emoji before a fullwidth form; byte order after.
func TestListingOrder(t *testing.T) {
	fullwidth, emoji := "q/\uFF01x", "q/\U0001F600y"
	utf16 := Listing{Less: UTF16Less}
	if utf16.Name(emoji) != nil || utf16.Name(fullwidth) != nil || utf16.Name(emoji) == nil {
		t.Error("UTF-16 order: emoji then fullwidth accepted, back to the emoji refused")
	}
	var bytes Listing
	if bytes.Name(fullwidth) != nil || bytes.Name(emoji) != nil || bytes.Name(fullwidth) == nil {
		t.Error("byte order: fullwidth then emoji accepted, back to the fullwidth refused")
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// A page stops at MaxPage bytes.
func TestPage(t *testing.T) {
	n, err := io.Copy(io.Discard, Page(endless{}))
	if !errors.Is(err, ErrTooLarge) || n != MaxPage {
		t.Errorf("read %d bytes of an endless page: %v", n, err)
	}
	if b, err := io.ReadAll(Page(strings.NewReader("small"))); err != nil || string(b) != "small" {
		t.Errorf("a small page: %q, %v", b, err)
	}
}

type stuck struct{ ctx context.Context }

func (s stuck) Read([]byte) (int, error) { <-s.ctx.Done(); return 0, context.Cause(s.ctx) }
func (s stuck) Close() error             { return nil }

// A body that stops is cut after the bound, and says so; time outside Read is not counted.
func TestDownloadStall(t *testing.T) {
	d := NewDownload(context.Background(), 100*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the caller's time: not a stall
	if d.Context().Err() != nil {
		t.Fatal("the guard ran while no Read waited")
	}
	body := d.Body(stuck{d.Context()})
	defer body.Close()
	if _, err := body.Read(make([]byte, 1)); !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "stopped sending") {
		t.Errorf("a stalled read: %v", err)
	}
}
