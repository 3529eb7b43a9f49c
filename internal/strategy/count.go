package strategy

import (
	"context"
	"io"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
)

// Counter is a strategy that counts what its backups hold while the raw stream passes (rows
// per table, keys, a file tree's digest), for verify to compare a scratch restore with.
type Counter interface {
	// NewCount returns what sees the raw stream of the next Backup.
	NewCount() Count
}

// Count sees a backup's raw stream as Backup writes it.
type Count interface {
	io.Writer
	// Contents returns what the stream held; it is called once Backup has returned. An error
	// means the stream is not one a restore could apply, and fails the backup.
	Contents() (*artifact.Contents, error)
}

// Verifier is a strategy whose restores can be checked in a scratch container: a throwaway
// copy of the service (same image, same configuration, empty volumes, no network) that the
// backup is restored into.
type Verifier interface {
	// NeedsServer says whether the scratch container must run (a database server) for the
	// restore; otherwise it is created and never started (files are written through the
	// archive API).
	NeedsServer() bool
	// Ready waits until the scratch container's server is ready for the restore (its image's
	// first-start initialisation done) and prepares what the restore expects (the database
	// the backup was made from).
	Ready(ctx context.Context, c *containers.Container, src Source) error
	// Found counts what the restored data holds, the way the backup's Count counted it;
	// want (what the manifest recorded, possibly nil) says what to look for.
	Found(ctx context.Context, c *containers.Container, src Source, want *artifact.Contents) (*artifact.Contents, error)
}

// discardCount counts nothing; its Contents are filled in by the strategy's Backup.
type discardCount struct{ contents *artifact.Contents }

func (discardCount) Write(p []byte) (int, error)              { return len(p), nil }
func (d *discardCount) Contents() (*artifact.Contents, error) { return d.contents, nil }

// streamCount runs a parser over the raw stream in a goroutine of its own, fed through a
// pipe: the parser reads as it likes, and whatever it leaves is drained.
type streamCount struct {
	pw       *io.PipeWriter
	done     chan struct{}
	contents *artifact.Contents
	err      error
}

func newStreamCount(parse func(io.Reader) (*artifact.Contents, error)) *streamCount {
	pr, pw := io.Pipe()
	c := &streamCount{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.contents, c.err = parse(pr)
		_, _ = io.Copy(io.Discard, pr)
	}()
	return c
}

func (c *streamCount) Write(p []byte) (int, error) { return c.pw.Write(p) }

func (c *streamCount) Contents() (*artifact.Contents, error) {
	_ = c.pw.Close()
	<-c.done
	return c.contents, c.err
}
