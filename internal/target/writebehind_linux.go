package target

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehindChunk is how much is written before its write-back to disk is started.
const writeBehindChunk = 8 << 20

// writeBehind starts the write-back of each chunk once it is written (sync_file_range with
// SYNC_FILE_RANGE_WRITE: it does not wait), so that the final fsync finds little left to do.
type writeBehind struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose write-back was started
}

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writeBehindChunk {
		// Best effort: the fsync at the end is what counts.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}
