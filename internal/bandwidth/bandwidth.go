// Package bandwidth caps the rate of an upload: a Rate parsed from what users write
// ("10MiB/s"), and a Limiter that paces the bytes a target sends (golang.org/x/time/rate).
package bandwidth

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/time/rate"
)

// Rate is a number of bytes a second; 0 is no cap.
type Rate int64

// Min is the smallest cap: below it an upload of a few megabytes would take hours.
const Min Rate = 1 << 10

// Forms says what ParseRate takes, for errors.
const Forms = "a rate like 10MiB/s, 500KiB/s, 2MB/s or 1048576 (bytes a second): a number (decimals allowed), " +
	"then B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), with or without /s, at least 1KiB/s; or off"

var units = map[string]float64{
	"": 1, "B": 1,
	"KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

// ParseRate reads a rate: "10MiB/s", "500KiB/s", "2MB/s", "1048576"; "off", "0" or nothing is
// no cap. An error names the value and the forms allowed.
func ParseRate(s string) (Rate, error) {
	v := strings.TrimSpace(s)
	if v == "" || v == "off" || v == "0" {
		return 0, nil
	}
	v = strings.TrimSuffix(v, "/s")
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(v)
	}
	num, unit := v[:i], strings.TrimSpace(v[i:])
	n, err := strconv.ParseFloat(num, 64)
	mult, known := units[unit]
	if num == "" || err != nil || !known || math.IsInf(n*mult, 0) || n*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("rate %q: not %s", s, Forms)
	}
	r := Rate(n * mult)
	if r < Min {
		return 0, fmt.Errorf("rate %q is below 1KiB/s: use %s", s, Forms)
	}
	return r, nil
}

// String writes r in the largest binary unit that keeps it whole, or in bytes ("10MiB/s").
func (r Rate) String() string {
	switch {
	case r == 0:
		return "off"
	case r%(1<<30) == 0:
		return fmt.Sprintf("%dGiB/s", r>>30)
	case r%(1<<20) == 0:
		return fmt.Sprintf("%dMiB/s", r>>20)
	case r%(1<<10) == 0:
		return fmt.Sprintf("%dKiB/s", r>>10)
	}
	return fmt.Sprintf("%dB/s", int64(r))
}

// Limiter paces bytes to a rate, shared by everything one upload sends (its data, its chunk
// list, its manifest); safe for concurrent use. A nil Limiter does not pace.
type Limiter struct {
	lim   *rate.Limiter
	burst int
}

// NewLimiter returns a Limiter of r; nil for 0 (no cap). Bytes go in pieces of a tenth of a
// second's worth (between 1 KiB and 1 MiB), so the rate holds over any second.
func NewLimiter(r Rate) *Limiter {
	if r <= 0 {
		return nil
	}
	burst := int(min(max(int64(r)/10, 1<<10), 1<<20))
	return &Limiter{lim: rate.NewLimiter(rate.Limit(r), burst), burst: burst}
}

// Rate is the limiter's rate (0 for nil).
func (l *Limiter) Rate() Rate {
	if l == nil {
		return 0
	}
	return Rate(l.lim.Limit())
}

// Wait blocks until n more bytes may go, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		k := min(n, l.burst)
		if err := l.lim.WaitN(ctx, k); err != nil {
			return fmt.Errorf("waiting for the upload's bandwidth cap: %w", err)
		}
		n -= k
	}
	return nil
}

// Reader returns r read at most at the limiter's rate (r itself for nil): each read takes no
// more than a piece and returns once its bytes may go.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if l == nil {
		return r
	}
	return &reader{ctx: ctx, r: r, l: l}
}

type reader struct {
	ctx context.Context
	r   io.Reader
	l   *Limiter
}

func (p *reader) Read(b []byte) (int, error) {
	if len(b) > p.l.burst {
		b = b[:p.l.burst]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		if werr := p.l.Wait(p.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Pacer returns a reader whose Read(b) waits until len(b) more bytes may go and returns
// len(b), reading nothing: a client that reports the bytes it sends through a reader (the
// S3 client's progress) is paced by what it really sends, not by what it buffers.
func (l *Limiter) Pacer(ctx context.Context) io.Reader {
	return pacer{ctx: ctx, l: l}
}

type pacer struct {
	ctx context.Context
	l   *Limiter
}

func (p pacer) Read(b []byte) (int, error) {
	if err := p.l.Wait(p.ctx, len(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
