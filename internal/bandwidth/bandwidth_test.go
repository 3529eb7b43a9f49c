package bandwidth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Rate
	}{
		{"10MiB/s", 10 << 20},
		{"500KiB/s", 500 << 10},
		{"2MB/s", 2_000_000},
		{"1048576", 1 << 20},
		{"1048576/s", 1 << 20},
		{"1GiB", 1 << 30},
		{"1.5MiB/s", 3 << 19},
		{" 64 KiB/s ", 64 << 10},
		{"100kB/s", 100_000},
		{"2048B/s", 2048},
		{"off", 0},
		{"0", 0},
		{"", 0},
	} {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"fast", "10Mbit/s", "10mib/s", "10 MiB per second", "-5MiB/s", "MiB/s", "1e9", "100", "0.5KiB/s", "99999999999GiB/s"} {
		_, err := ParseRate(bad)
		if err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), "10MiB/s, 500KiB/s, 2MB/s") {
			t.Errorf("ParseRate(%q): %v; want the value and the forms allowed", bad, err)
		}
	}
}

func TestRateString(t *testing.T) {
	for r, want := range map[Rate]string{0: "off", 10 << 20: "10MiB/s", 500 << 10: "500KiB/s", 2_000_000: "2000000B/s", 1 << 30: "1GiB/s"} {
		if got := r.String(); got != want {
			t.Errorf("%d: %q, want %q", int64(r), got, want)
		}
		if r != 0 {
			if back, err := ParseRate(r.String()); err != nil || back != r {
				t.Errorf("ParseRate(%q) = %d, %v", r.String(), back, err)
			}
		}
	}
}

// TestReaderPaces: 5 MiB read through a 1 MiB/s limiter take 5 s less the first piece (a
// tenth of a second's worth, there at once), on the bubble's fake clock: exact, whatever the
// machine's load.
func TestReaderPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1 << 20)
		start := time.Now()
		n, err := io.Copy(io.Discard, l.Reader(context.Background(), bytes.NewReader(make([]byte, 5<<20))))
		if err != nil || n != 5<<20 {
			t.Fatalf("copied %d, %v", n, err)
		}
		if took := time.Since(start); took < 4800*time.Millisecond || took > 5*time.Second {
			t.Errorf("5 MiB at 1 MiB/s took %v, want 4.9 s", took)
		}
	})
}

// TestPacerPaces: the S3 client's progress reader, read with what it sent, holds it to the
// rate as the Reader does; one limiter is shared by everything an upload sends.
func TestPacerPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10 << 20)
		p := l.Pacer(context.Background())
		start := time.Now()
		buf := make([]byte, 3<<20) // more than a piece at once: waited for in pieces
		for range 10 {
			if n, err := p.Read(buf); err != nil || n != len(buf) {
				t.Fatalf("Read = %d, %v", n, err)
			}
		}
		if _, err := io.Copy(io.Discard, l.Reader(context.Background(), bytes.NewReader(make([]byte, 20<<20)))); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 4800*time.Millisecond || took > 5*time.Second {
			t.Errorf("50 MiB at 10 MiB/s took %v, want 4.9 s", took)
		}
	})
}

func TestReaderStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		l := NewLimiter(Min)
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, l.Reader(ctx, bytes.NewReader(make([]byte, 1<<20))))
			done <- err
		}()
		time.Sleep(3 * time.Second)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "bandwidth cap") {
			t.Errorf("cancelled: %v", err)
		}
	})
}

func TestNoCap(t *testing.T) {
	var l *Limiter
	r := strings.NewReader("x")
	if NewLimiter(0) != nil || l.Reader(context.Background(), r) != io.Reader(r) || l.Wait(context.Background(), 1<<30) != nil || l.Rate() != 0 {
		t.Error("a nil limiter paces")
	}
}
