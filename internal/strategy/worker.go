package strategy

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
)

// ErrNoWorker is wrapped when a worker container cannot be used (no image, a platform
// mismatch, a path that is not on a volume, a policy that forbids new containers): nothing
// was done, and the Engine's archive API is used instead.
var ErrNoWorker = errors.New("no worker container")

// ErrNoRoom is wrapped when a staged restore cannot be made because a volume has not the room
// for the backup beside its current data: nothing was changed; restore in place instead.
var ErrNoRoom = errors.New("no room to stage the restore")

// ErrUnapplied is wrapped when a staged restore failed before anything was moved into place:
// the service's data is as it was.
var ErrUnapplied = errors.New("nothing was moved into place")

// WorkRequest says how a worker packs or unpacks the stored stream.
type WorkRequest struct {
	Compression artifact.Compression
	// Recipients are the public keys a backup is encrypted for, in the worker.
	Recipients []string
	// Exclude are a backup's gitignore-style patterns of what it leaves out below each path
	// (package exclude), checked already.
	Exclude []string
	// Trusted: the restored backup's manifest is signed (see Data.Trusted).
	Trusted bool
	// Size is the raw size of the restored stream, as the signed manifest says: a staged
	// restore checks the room for it, and no restore unpacks more.
	Size int64
	// Room, when Size is not known (0: a snapshot's stream, made from verified blobs), is the
	// room a staged restore checks for.
	Room int64
}

// IncrementalWork is an incremental backup's request to a worker session.
type IncrementalWork struct {
	// Exclude are gitignore-style patterns of what the backup leaves out (package exclude).
	Exclude []string
	// Parent is the parent snapshot's file metadata (package incremental/meta, made by
	// incremental.ParentMetadata), read as the walk goes; nil: every file is read.
	Parent io.Reader
}

// IncrementalWorker is a WorkerSession that makes an incremental backup's stream: a plain tar
// whose entries carry PAX records of their identity and whose files unchanged since the
// parent are header-only (package incremental ingests it).
type IncrementalWorker interface {
	BackupIncremental(ctx context.Context, req IncrementalWork, out io.Writer, progress func(int64)) (*meta.Stats, error)
}

// FileSink is a Backup's out that is a new local file (a directory target's): a worker on the
// same host is given its descriptor and writes the stored stream into it itself — the bytes
// then cross no socket and no other process — and says what it wrote.
type FileSink interface {
	io.Writer
	// File is the file, open for writing, empty.
	File() *os.File
	// Wrote records that size bytes whose SHA-256 is sum, and whose chunk list
	// (artifact.Digest) is chunks, were written into File by someone else; an error: the file
	// does not hold them.
	Wrote(size int64, sum, chunks []byte) error
}

// FileSource is a staged restore's stored stream that is a local file (a directory target's
// artifact, not encrypted): a worker on the same host is given its descriptor and reads it
// itself, then says what it read. Nothing is committed unless Check accepts that.
type FileSource interface {
	io.Reader
	// File is the pinned artifact, open for reading.
	File() *os.File
	// Check says whether size bytes whose SHA-256 is sum, read from File by someone else,
	// are the artifact; an error wraps the reason it is not (a corrupt artifact).
	Check(size int64, sum []byte) error
	// Bounds are what whoever reads File must hold it to as it reads: the artifact's size
	// (no byte more is read) and, when it has one, its verified chunk list (a chunk is used
	// only once it matched).
	Bounds() (size int64, chunks *artifact.Chunks, list []byte)
}

// WorkerAccess is what a worker is opened to do, and so all it may do.
type WorkerAccess struct {
	// Write: a restore, the mounts read-write; otherwise a backup or a count, read-only.
	Write bool
	// Trusted: the restored backup is trusted (Data.Trusted), so the worker may make device
	// nodes and set file capabilities, which the tar policy refuses from other backups.
	Trusted bool
}

// Sizes are what a volume backup of a service's paths holds — entries (directories, files,
// links, as artifact.Contents counts them) and bytes of regular files, a group of hard links'
// once — and the same of what its exclusions leave out.
type Sizes struct {
	Files, Bytes                 int64
	ExcludedFiles, ExcludedBytes int64
}

// Worker runs a volume backup or restore beside the data, in a container that mounts the
// service's volumes (package worker).
type Worker interface {
	// Open prepares a worker with the mounts of c that hold paths, for access. An error
	// wrapping ErrNoWorker says why none can be used; nothing was changed.
	Open(ctx context.Context, c *containers.Container, paths []string, access WorkerAccess) (WorkerSession, error)
}

// WorkerSession is one prepared worker; Close removes it, on every path.
type WorkerSession interface {
	// Start starts the worker, which then waits for Backup or Restore (they start it
	// when it was not).
	Start(ctx context.Context) error
	// Backup writes the stored stream (compressed, encrypted for req.Recipients) to out
	// and returns what the raw stream held.
	Backup(ctx context.Context, req WorkRequest, out io.Writer, progress func(raw int64)) (*artifact.Contents, error)
	// Count digests the paths as Backup does (what a restore wrote, for verify), leaving out
	// what the patterns exclude, as the backup did; it sends nothing.
	Count(ctx context.Context, exclude []string) (*artifact.Contents, error)
	// Measure adds up what Backup would hold, and what the patterns exclude, from each
	// entry's metadata alone (no file is read); it sends nothing.
	Measure(ctx context.Context, exclude []string) (*Sizes, error)
	// Restore unpacks the compressed stream in into the paths.
	Restore(ctx context.Context, req WorkRequest, in io.Reader, progress func(raw int64)) error
	// Stage unpacks the compressed stream in beside the paths' data (nothing in place is
	// changed) and returns once in ended with io.EOF and all of it is unpacked; Commit then
	// moves it into place. Close without Commit removes what was staged. Errors wrap
	// ErrUnapplied, or ErrNoRoom when a volume has not the room (checked before reading in).
	Stage(ctx context.Context, req WorkRequest, in io.Reader, progress func(raw int64)) error
	// Commit moves what Stage unpacked into place.
	Commit(ctx context.Context) error
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

// Settler is a Packer whose BackupPacked leaves something to finish once the stored stream is
// complete (a worker's removal): Settle waits for it. The pipeline calls it after publishing,
// so that both happen at once.
type Settler interface {
	Settle()
}

// Warmer is a Packer whose restore can be made ready while the artifact is still being
// verified (a worker container started, waiting): it takes the start's time off the restore.
type Warmer interface {
	// WarmRestore prepares RestorePacked for the restore of data into c (data's reader is
	// not used). The returned release undoes what RestorePacked did not take; it is safe to
	// call after RestorePacked. Nothing in c is changed.
	WarmRestore(ctx context.Context, c *containers.Container, data Data) (release func())
}

// Stager is a Packer whose restore can be staged: the data is unpacked beside what it
// replaces while the artifact is read (and verified), and moved into place only once all of
// it matched — one read of the artifact, and nothing changed by a restore that fails before.
type Stager interface {
	// RestoreStaged restores data (its reader gives the compressed stream, decrypted; io.EOF
	// only once verified). staged is called once all of it is unpacked, before anything is
	// moved into place. An error wrapping ErrNoWorker or ErrNoRoom: nothing was read into c
	// or changed, restore another way; wrapping ErrUnapplied: nothing in c was changed.
	RestoreStaged(ctx context.Context, c *containers.Container, data Data, comp artifact.Compression, progress func(raw int64), staged func(context.Context)) error
}
