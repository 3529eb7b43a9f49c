// Package guard bounds what a remote store's answers can cost a client: a download that stops
// making progress, a paged listing that never ends or goes back, a page or a name too large.
package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
	"unicode/utf16"
)

// StallTimeout cuts a download that makes no progress for this long.
const StallTimeout = 2 * time.Minute

// ErrStalled is the cause of a download cut by its guard.
var ErrStalled = errors.New("the transfer made no progress")

// Download guards one request's response body: its clock runs only while a Read waits for
// the server (never while the caller works), and cancels the request once it reaches the
// limit. The headers are the transport's to bound (ResponseHeaderTimeout).
type Download struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	after   time.Duration
	mu      sync.Mutex
	stopped bool
}

// NewDownload returns a guard whose Context is the request's.
func NewDownload(ctx context.Context, after time.Duration) *Download {
	ctx, cancel := context.WithCancelCause(ctx)
	d := &Download{ctx: ctx, cancel: cancel, after: after}
	d.timer = time.AfterFunc(after, func() { cancel(fmt.Errorf("%w for %s", ErrStalled, after)) })
	d.timer.Stop()
	return d
}

// Context is the context to send the request with.
func (d *Download) Context() context.Context { return d.ctx }

// Release ends the guard and its context; a Body's Close releases it.
func (d *Download) Release() {
	d.mu.Lock()
	d.stopped = true
	d.timer.Stop()
	d.mu.Unlock()
	d.cancel(context.Canceled)
}

// Body wraps the response's body: each Read is bounded, Close releases the guard.
func (d *Download) Body(body io.ReadCloser) io.ReadCloser { return &guardedBody{d: d, body: body} }

// Err says of a read error whether the guard cut the request.
func (d *Download) Err(err error) error {
	cause := context.Cause(d.ctx)
	switch {
	case errors.Is(err, ErrStalled):
		return fmt.Errorf("network: %w (the server stopped sending)", err)
	case errors.Is(cause, ErrStalled):
		return fmt.Errorf("network: %w (the server stopped sending): %v", cause, err)
	}
	return err
}

func (d *Download) set(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopped:
	case on:
		d.timer.Reset(d.after)
	default:
		d.timer.Stop()
	}
}

type guardedBody struct {
	d    *Download
	body io.ReadCloser
}

func (b *guardedBody) Read(p []byte) (int, error) {
	b.d.set(true)
	n, err := b.body.Read(p)
	b.d.set(false)
	if err != nil && err != io.EOF {
		err = b.d.Err(err)
	}
	return n, err
}

func (b *guardedBody) Close() error {
	err := b.body.Close()
	b.d.Release()
	return err
}

// ReadError reads at most n bytes of a failed answer's body, to say what failed, and closes
// it: a server that stops sending it is given up after within (closing the body ends a Read
// that waits), so that it cannot hang the request.
func ReadError(body io.ReadCloser, n int64, within time.Duration) []byte {
	timer := time.AfterFunc(within, func() { body.Close() })
	defer timer.Stop()
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, n))
	return b
}

// MaxPage is the most one page of a listing may hold: a thousand names take well under a
// megabyte.
const MaxPage = 32 << 20

// MaxName is the longest name a listing may give (Azure and GCS allow 1,024 characters).
const MaxName = 4 << 10

// MaxEmptyPages is how many empty pages in a row a listing may give before it is refused
// (a service may end a page early, with no names, on a timeout of its own).
const MaxEmptyPages = 100

// ErrTooLarge is the error of a page larger than MaxPage.
var ErrTooLarge = fmt.Errorf("a page of the listing is larger than %d MiB", MaxPage>>20)

// Page is r limited to MaxPage bytes: a Read past them fails with ErrTooLarge.
func Page(r io.Reader) io.Reader { return &limited{r: r, n: MaxPage} }

type limited struct {
	r io.Reader
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Listing checks that a paged listing advances, so that a broken or hostile service cannot
// make it run for ever: names in strictly increasing order (the service's), each page's
// marker new, a bounded run of empty pages, short names.
type Listing struct {
	// Less is the service's order of names; nil is byte order (GCS's, S3's).
	Less         func(a, b string) bool
	last, marker string
	named        bool
	empty        int
}

// UTF16Less orders names by their UTF-16 code units, as Azure's storage compares them: byte
// order but for a character beyond U+FFFF, which sorts before one of U+E000–U+FFFF.
func UTF16Less(a, b string) bool {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b))) < 0
}

func (l *Listing) less(a, b string) bool {
	if l.Less == nil {
		return a < b
	}
	return l.Less(a, b)
}

// Name checks the listing's next name.
func (l *Listing) Name(name string) error {
	switch {
	case len(name) > MaxName:
		return fmt.Errorf("the listing gave a name of %d bytes (at most %d)", len(name), MaxName)
	case l.named && !l.less(l.last, name):
		return fmt.Errorf("the listing went back or repeated itself (%q after %q)", name, l.last)
	}
	l.last, l.named = name, true
	return nil
}

// Next checks the marker of the next page, after a page of n names; "" ends the listing.
func (l *Listing) Next(marker string, n int) error {
	if marker == "" {
		return nil
	}
	if marker == l.marker {
		return errors.New("the listing's next-page marker did not change")
	}
	if l.empty = l.empty + 1; n > 0 {
		l.empty = 0
	}
	if l.empty > MaxEmptyPages {
		return fmt.Errorf("the listing gave %d empty pages in a row", l.empty)
	}
	l.marker = marker
	return nil
}
