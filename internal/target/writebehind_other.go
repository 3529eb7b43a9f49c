//go:build !linux

package target

import "os"

// writeBehind writes; the fsync at the end does the rest (Linux starts write-back early).
type writeBehind struct{ f *os.File }

func (w *writeBehind) Write(p []byte) (int, error) { return w.f.Write(p) }
