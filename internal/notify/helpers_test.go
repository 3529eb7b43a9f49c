package notify

import (
	"io"
	"log/slog"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func slogHandler(t *Tail) *slog.Logger { return slog.New(t.Handler()) }
