package strategy

import (
	"context"
	"errors"
	"io"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
)

// ErrNoWorker is wrapped when a worker container cannot be used (no image, a platform
// mismatch, a path that is not on a volume, a policy that forbids new containers): nothing
// was done, and the Engine's archive API is used instead.
var ErrNoWorker = errors.New("no worker container")

// WorkRequest says how a worker packs or unpacks the stored stream.
type WorkRequest struct {
	Compression artifact.Compression
	// Recipients are the public keys a backup is encrypted for, in the worker.
	Recipients []string
	// Trusted: the restored backup's manifest is signed (see Data.Trusted).
	Trusted bool
}

// Worker runs a volume backup or restore beside the data, in a container that mounts the
// service's volumes (package worker).
type Worker interface {
	// Open prepares a worker with the mounts of c that hold paths, read-only unless write.
	// An error wrapping ErrNoWorker says why none can be used; nothing was changed.
	Open(ctx context.Context, c *containers.Container, paths []string, write bool) (WorkerSession, error)
}

// WorkerSession is one prepared worker; Close removes it, on every path.
type WorkerSession interface {
	// Start starts the worker, which then waits for Backup or Restore (they start it
	// when it was not).
	Start(ctx context.Context) error
	// Backup writes the stored stream (compressed, encrypted for req.Recipients) to out
	// and returns what the raw stream held.
	Backup(ctx context.Context, req WorkRequest, out io.Writer, progress func(raw int64)) (*artifact.Contents, error)
	// Restore unpacks the compressed stream in into the paths.
	Restore(ctx context.Context, req WorkRequest, in io.Reader, progress func(raw int64)) error
	Close() error
}

// Packer is a strategy that can make and apply the stored stream itself, beside the data,
// instead of handing raw bytes to the pipeline.
type Packer interface {
	// BackupPacked writes the compressed (and, for req.Recipients, encrypted) stream of c to
	// w; progress gets the raw bytes so far. An error wrapping ErrNoWorker: nothing was
	// written, use Backup.
	BackupPacked(ctx context.Context, c *containers.Container, req WorkRequest, w io.Writer, progress func(raw int64)) (Source, *artifact.Contents, error)
	// RestorePacked applies data, whose reader gives the compressed stream (decrypted; io.EOF
	// only once verified). An error wrapping ErrNoWorker: nothing was read or changed, use
	// Restore.
	RestorePacked(ctx context.Context, c *containers.Container, data Data, comp artifact.Compression, progress func(raw int64)) error
}

// Warmer is a Packer whose restore can be made ready while the artifact is still being
// verified (a worker container started, waiting): it takes the start's time off the restore.
type Warmer interface {
	// WarmRestore prepares RestorePacked for the restore of data into c (data's reader is
	// not used). The returned release undoes what RestorePacked did not take; it is safe to
	// call after RestorePacked. Nothing in c is changed.
	WarmRestore(ctx context.Context, c *containers.Container, data Data) (release func())
}

// SourceDataPath is the manifest key saying how a volume backup was read: DataPathWorker or
// DataPathArchive.
const SourceDataPath = "data_path"

// Data paths of a volume backup.
const (
	DataPathWorker  = "worker"  // a worker container beside the data
	DataPathArchive = "archive" // the Engine's archive API
)
