package output

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Terminal is where a progress line may be drawn: the plugin's stderr.
type Terminal interface {
	io.Writer
	IsTerminal() bool
}

// Progress returns a callback drawing a bytes/rate line on w when it is a terminal, and a
// function that clears it.
func Progress(w Terminal, what string) (func(int64), func()) {
	if !w.IsTerminal() {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(250*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
	var last int64
	return func(n int64) {
			_ = bar.Add64(n - last)
			last = n
		}, func() {
			_ = bar.Finish()
		}
}
