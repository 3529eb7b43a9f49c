package writeback

import (
	"os"

	"golang.org/x/sys/unix"
)

// chunk is how much is written before its write-back to disk is started.
const chunk = 8 << 20

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.F.Write(p)
	w.off += int64(n)
	if w.off-w.started >= chunk {
		// Best effort (SYNC_FILE_RANGE_WRITE does not wait): the fsync at the end is what counts.
		_ = unix.SyncFileRange(int(w.F.Fd()), w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.off
	}
	return n, err
}

// Start starts the write-back to disk of n bytes of f from off (n 0: to the file's end) and
// does not wait for it. Best effort: an fsync or syncfs later is what makes it durable.
func Start(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
