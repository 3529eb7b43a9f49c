package output

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/docker-backup/docker-backup/internal/control"
)

// Logger writes the engine's progress messages to w as plain lines:
// "Stopping container (container=shop-db-1)".
func Logger(w io.Writer) *slog.Logger {
	return slog.New(&lineHandler{w: w})
}

// lineHandler is a slog.Handler for people: the message, capitalised, then its attributes.
type lineHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var attrs []string
	for _, a := range h.attrs {
		attrs = append(attrs, a.Key+"="+a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a.Key+"="+a.Value.String())
		return true
	})
	msg := r.Message
	if len(attrs) > 0 {
		msg += " (" + strings.Join(attrs, ", ") + ")"
	}
	_, err := io.WriteString(h.w, line(strings.ToLower(r.Level.String()), msg)+"\n")
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// line writes a log message for people, the plugin's own and the sidecar's alike:
// capitalised, warnings and errors marked.
func line(level, msg string) string {
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if level == "warn" || level == "error" {
		msg = level + ": " + msg
	}
	return msg
}

// Event is a sidecar's log event as a line like the plugin's own (see Logger).
func Event(ev control.Event) string { return line(ev.Level, ev.Message) }
