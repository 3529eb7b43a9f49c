package agent

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNothingAfterTheFinalReport: the worker's progress ticker, still running when the final
// report goes, sends nothing after it; a failure after a done report is not sent either.
func TestNothingAfterTheFinalReport(t *testing.T) {
	for range 20 {
		var out bytes.Buffer
		var mu sync.Mutex
		rep := &reporter{w: writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })}
		stop := rep.every(time.Microsecond)
		time.Sleep(2 * time.Millisecond)
		rep.done(nil)
		time.Sleep(5 * time.Millisecond) // ticks after the end
		stop()
		rep.fail(errors.New("late"))
		mu.Lock()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		mu.Unlock()
		if last := lines[len(lines)-1]; !strings.Contains(last, `"done":true`) || strings.Count(out.String(), `"done":true`) != 1 {
			t.Fatalf("the last of %d reports is %s, want the done report, once", len(lines), last)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
