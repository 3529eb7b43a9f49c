// Package agent is what runs inside a worker container (the binary's hidden "__worker"
// command, see package worker): Serve reads one Request, then walks and archives the mounted
// volumes, compresses and (for public-key recipients) encrypts, and sends only the stored
// bytes; or it takes the compressed bytes in, decompresses, checks each entry with the volume
// strategy's tar policy and writes the files itself, staged beside the data until the verdict.
// Its reports are JSON lines (Report). It imports nothing of the Engine API: the plugin also
// runs its archive in its own process (BackupRoots) to read local volumes in place.
package agent

import (
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

// Operations a Request asks for.
const (
	OpBackup  = "backup"
	OpRestore = "restore"
	// OpCount digests the paths as a backup does and sends nothing (verify's look at what
	// a restore wrote).
	OpCount = "count"
	// OpMeasure adds up what a backup of the paths would hold and what the exclusions leave
	// out, from each entry's lstat (no file is read), and sends nothing (detect's sizes).
	OpMeasure = "measure"
)

// Measurement is what OpMeasure finds (see tree.Measurement).
type Measurement = tree.Measurement

// Request is the first line of the worker's stdin (JSON). Secrets are never in it: a
// passphrase-encrypted backup is encrypted by the caller.
type Request struct {
	Op    string   `json:"op"`
	Paths []string `json:"paths"` // absolute, as the manifest lists them
	// Mounts are where the service's volumes are mounted in the worker (as in the service).
	Mounts      []string             `json:"mounts"`
	Compression artifact.Compression `json:"compression"` // of the stream in or out
	// Exclude are a backup's gitignore-style patterns of what it leaves out below each path
	// (package exclude); a bad one fails the backup before anything is read.
	Exclude []string `json:"exclude,omitempty"`
	// Recipients are age or SSH public keys the backup stream is encrypted for, after
	// compression; none: the stream leaves compressed only.
	Recipients []string `json:"recipients,omitempty"`
	// Socket, when set, is a unix socket (in the worker) to connect to for the data, instead
	// of stdin and stdout.
	Socket string `json:"socket,omitempty"`
	// File: the socket's first message carries a file's descriptor: for a backup, a new file
	// of a directory target to write the stored stream into instead of sending it; for a
	// staged restore, the pinned artifact to read it from, and the worker answers FileTaken or
	// FileRefused (then the stream comes in frames, as without a file). A worker that cannot
	// use the descriptor (a security module refusing it) sends or takes the stream instead.
	File bool `json:"file,omitempty"`
	// Trusted: the restored backup's manifest is signed with this tool's key (see
	// strategy.Data.Trusted).
	Trusted bool `json:"trusted,omitempty"`
	// Staged: unpack beside the data, then wait for the verdict (see Serve). The stream then
	// comes in frames.
	Staged bool `json:"staged,omitempty"`
	// Size is a restore's raw size as its signed manifest says: the room a staged restore
	// needs on each volume, and no more is unpacked.
	Size int64 `json:"size,omitempty"`
	// Room, when Size is 0, is the room a staged restore needs on each volume.
	Room int64 `json:"room,omitempty"`
	// Stored, for a restore given the artifact's file, is the artifact's size: no more is
	// read. Chunks, when set, is its verified chunk list (ChunkSize bytes a chunk): a chunk is
	// unpacked only once it matched.
	Stored    int64  `json:"stored,omitempty"`
	ChunkSize int64  `json:"chunk_size,omitempty"`
	Chunks    []byte `json:"chunks,omitempty"`
	// Incremental: a backup's stream is an incremental one (tree.ArchiveIncremental), a plain
	// tar compressed with Compression when it is set; no Recipients. Parent: the parent's file
	// metadata (package incremental/meta) comes first on the data input (the socket, else
	// stdin after this line), read as the walk goes.
	Incremental bool `json:"incremental,omitempty"`
	Parent      bool `json:"parent,omitempty"`
}

// Verdicts of a staged restore, the byte after the stream's last frame.
const (
	VerdictCommit = 'C'
	VerdictAbort  = 'A'
)

// A staged restore's answer to a file (Request.File): it reads the file itself, or it takes
// the stream in frames.
const (
	FileTaken   = 'F'
	FileRefused = 'S'
)

// CodeNoRoom is the Report.Code of a staged restore refused for lack of room.
const CodeNoRoom = "no-room"

// Report is one line (JSON) the worker writes to stderr: progress while it works, then one
// final line with Done or Error.
type Report struct {
	Raw      int64              `json:"raw"` // raw (tar) bytes so far
	Done     bool               `json:"done,omitempty"`
	Contents *artifact.Contents `json:"contents,omitempty"`
	Error    string             `json:"error,omitempty"`
	Code     string             `json:"code,omitempty"` // what kind of error (CodeNoRoom)
	// Staged: a staged restore unpacked everything and waits for the verdict.
	Staged bool `json:"staged,omitempty"`
	// Committed: a staged restore moved everything into place (what it replaced is removed
	// next).
	Committed bool   `json:"committed,omitempty"`
	Log       string `json:"log,omitempty"`
	// Warn is a warning for the user (a restore that left something out).
	Warn string `json:"warn,omitempty"`
	// File: the given file (Request.File) was written by the backup, or read by the staged
	// restore (reported with Staged): Size bytes whose SHA-256 is SHA256 (hex).
	File   bool   `json:"file,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Chunks is the chunk list of the file a backup wrote (artifact.Digest).
	Chunks []byte `json:"chunks,omitempty"`
	// Excluded is how many of Request.Exclude's patterns the backup applied: a worker of an
	// older release, which knows none, says nothing, and its backup is refused.
	Excluded int `json:"excluded,omitempty"`
	// Measured is what OpMeasure found (a worker of an older release, which knows no such
	// operation, fails it as unknown).
	Measured *Measurement `json:"measured,omitempty"`
	// Incremental is what an incremental backup read and passed over (a worker of an older
	// release, which makes a full stream, says nothing: its stream is refused).
	Incremental *meta.Stats `json:"incremental,omitempty"`
}
