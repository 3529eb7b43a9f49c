package notify

import (
	"log/slog"
	"strings"
	"sync"
)

// Tail keeps the last lines a run logged: the body of a failure ping.
type Tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

// NewTail keeps up to max lines.
func NewTail(max int) *Tail { return &Tail{max: max} }

// Write takes one formatted log record.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, strings.TrimRight(string(p), "\n"))
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

// Handler is a slog handler that writes into the tail.
func (t *Tail) Handler() slog.Handler {
	return slog.NewTextHandler(t, &slog.HandlerOptions{Level: slog.LevelInfo})
}

// String is the kept lines.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
