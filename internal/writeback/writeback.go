// Package writeback writes a file while its write-back to disk goes on beside: the final
// fsync then finds little left to do, and the disk works while the data is still being made
// instead of after.
package writeback

import "os"

// Writer writes to F at its current offset; on Linux it starts the write-back of every
// chunk once written (without waiting for it).
type Writer struct {
	F       *os.File
	off     int64 // bytes written
	started int64 // bytes whose write-back was started
}

// New returns a Writer for f.
func New(f *os.File) *Writer { return &Writer{F: f} }

// Written is the number of bytes written through w.
func (w *Writer) Written() int64 { return w.off }
