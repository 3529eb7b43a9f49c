// Package output is what the plugin prints, whether it did the work itself or its sidecar did:
// a backup's and a restore's result, a verify's report, the listing and status tables, log
// lines, and the sizes, rates and ages in them.
package output

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// Bytes is n bytes for people: "1.5MiB".
func Bytes(n int64) string { return units.BytesSize(float64(n)) }

// Rate is n bytes in d for people: "12MiB/s"; "-" when d is not positive.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return units.BytesSize(float64(n)/d.Seconds()) + "/s"
}

// Ago is how long before now t was: "3 hours ago"; "-" for the zero time.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

// Clean is s as it may be printed to a terminal: control characters (escape sequences, a
// forged name's) written as Go escapes, never sent as they are.
func Clean(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Warning prints a warning line to w (its text cleaned of control characters).
func Warning(w io.Writer, format string, args ...any) {
	fmt.Fprintln(w, "warning: "+Clean(fmt.Sprintf(format, args...)))
}

// FirstLine is s's first line, cut to n bytes ("…" when cut).
func FirstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// oneLine is s on one line, cut to 200 bytes ("..." when cut), for a table's cell.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// shortID is an image ID's first 12 hexadecimal digits.
func shortID(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
