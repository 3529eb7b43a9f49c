// Package strategy is what every kind of data shares: a Strategy writes a raw (uncompressed)
// backup stream and restores from one; the optional interfaces say what else a kind can do
// (Checker, OnePass, Counter and Verifier for verify, Packer and Stager with a worker beside
// the data), and Data, Source, Options and StepError are what they take and give. Each kind is
// a package below this one (postgres, mysql, redis, mongo, sqlite, volume); package strategies
// makes them by name. Compression, checksums and storage are the pipeline's job, so every
// strategy works with every target.
package strategy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/mountpath"
)

// Strategy backs up and restores one kind of data.
type Strategy interface {
	// Name is the strategy's name as users write it ("postgres", "volume").
	Name() string
	// Extension is the file name extension of the raw stream ("sql", "tar").
	Extension() string
	// Backup writes the raw backup of c to w and returns what the manifest should record
	// about the source (tool versions, database, paths).
	Backup(ctx context.Context, c *containers.Container, w io.Writer) (Source, error)
	// Restore applies a raw stream produced by Backup to c. It stops the container itself
	// when it must (c.WhileStopped: the restart is guaranteed), and, where the engine can
	// undo its work, commits only once data's reader has ended with io.EOF.
	Restore(ctx context.Context, c *containers.Container, data Data) error
}

// Checker is implemented by strategies that can tell, from the raw stream alone, whether it
// is something their Backup could have written and that is safe to apply to c: the restore
// reads the whole artifact through Check before anything in the container is touched.
type Checker interface {
	Check(ctx context.Context, c *containers.Container, data Data) error
}

// OnePass is implemented by strategies that can restore from a single read of the artifact.
// OnePass(data) reports whether, for this backup, Restore checks the stream as Check would
// while it applies it, commits nothing until its reader ended with io.EOF (a failure before
// rolls everything back), and leaves the service running. The restore then reads the artifact
// once, each chunk verified against the signed chunk list before the strategy sees it,
// instead of reading it all to verify it first.
type OnePass interface {
	OnePass(data Data) bool
}

// Atomicity says what an interrupted restore leaves behind, for the error that reports it.
type Atomicity interface {
	// Interrupted describes the state an interrupted restore leaves; "" when it leaves the
	// service exactly as it was.
	Interrupted() string
}

// Versioned is a database strategy that can tell the running server's version, so that a
// restore into another major version can be flagged.
type Versioned interface {
	ServerVersion(ctx context.Context, c *containers.Container) (string, error)
	Major(version string) string
}

// Data is a raw backup stream to restore, with what its manifest says about it.
//
// Its reader returns io.EOF only once the whole artifact has been read and has matched the
// size and SHA-256 of its manifest: any other end — a cut stream, a replaced object, a
// cancelled context — is an error. A strategy that can roll back commits only after that EOF.
type Data struct {
	io.Reader
	Size   int64  // exact length of the raw stream
	Room   int64  // when Size is 0 (not known): the room a staged restore needs
	Source Source // what Backup recorded
	// Trusted is set when the manifest's signature was verified: the backup was made with
	// this tool's signing key. An unauthenticated backup is held to stricter rules (no
	// set-user-ID files, no device nodes).
	Trusted bool
	// Allowed are the directories of the container a restore may write into: its
	// read-write volumes and bind mounts (through the sidecar, only the paths of the
	// service's jobs). Nothing the manifest says can widen them.
	Allowed []string
}

// Drain reads what is left of data, which ends the verification of the stored bytes: a
// strategy that stops reading before the end (a tar reader stops at its end marker) calls
// it before committing.
func (d Data) Drain() error {
	_, err := io.Copy(io.Discard, d.Reader)
	return err
}

// Source is what a strategy records about the data it backed up.
type Source map[string]string

// Options are a user's overrides; each strategy reads the fields that concern it.
type Options struct {
	// User and Database override what a database strategy reads from the container's env.
	User     string
	Database string
	// Password goes with User; it never comes from a label or a command line flag.
	Password string
	// Paths overrides the volume strategy's default of the container's mounts.
	Paths []string
	// Exclude are gitignore-style patterns of what a volume backup leaves out below each path
	// (package volume/exclude); the other strategies refuse them.
	Exclude []string
	// NoStop restores volumes into the running container instead of stopping it.
	NoStop bool
	// Worker does volume work beside the data; nil: the Engine's archive API.
	Worker Worker
	// RequireWorker fails a volume backup or restore that cannot use the worker, instead of
	// falling back to the archive API.
	RequireWorker bool
	// Log receives progress messages (container stopped and started, fallbacks taken).
	Log *slog.Logger
}

// StepError tells which step of a backup or restore failed, for which service.
type StepError struct {
	Target string // the container, as containers.Container.String names it
	Step   string // "dump", "copy", "restore", ...
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s of %s failed: %v", e.Step, e.Target, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

// StepErr wraps err (nil: none) as the failed step of what a strategy did to c.
func StepErr(c *containers.Container, step string, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Target: c.String(), Step: step, Err: err}
}

// WritableMounts lists where a restore may write in c: its read-write volumes and bind mounts.
func WritableMounts(c *containers.Container) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.RW {
			out = append(out, path.Clean(m.Destination))
		}
	}
	sort.Strings(out)
	return out
}

// CheckConfined refuses to write at p unless it is inside one of data.Allowed, and every
// directory between that mount and p is a real directory (not a symbolic link that the
// Engine would follow out of the mount).
func CheckConfined(ctx context.Context, c *containers.Container, p string, allowed []string, what string) error {
	mount, ok := mountpath.Holder(p, allowed)
	if !ok {
		have := "none"
		if len(allowed) > 0 {
			have = strings.Join(allowed, ", ")
		}
		return fmt.Errorf("refusing to write %s %s: it is not inside a writable volume or bind mount of the container (%s)", what, p, have)
	}
	for dir := path.Dir(p); mountpath.Inside(dir, mount) && dir != mount; dir = path.Dir(dir) {
		kind, err := c.Stat(ctx, dir)
		if err != nil {
			return err
		}
		switch kind {
		case containers.Directory, containers.Missing:
		default:
			return fmt.Errorf("refusing to write %s %s: %s in the container is not a directory (a symbolic link could lead out of the volume)", what, p, dir)
		}
	}
	return nil
}

// RestoreSuffix names the copy a restore writes beside the live file before swapping it in.
const RestoreSuffix = ".docker-backup-restore"
