package strategy

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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

// streamCount runs a parser over the raw stream in a goroutine of its own, fed through a
// pipe: the parser reads as it likes, and whatever it leaves is drained.
type streamCount struct {
	pw       *io.PipeWriter
	done     chan struct{}
	contents *artifact.Contents
	err      error
}

// NewStreamCount is a Count that runs parse over the raw stream in a goroutine of its own.
func NewStreamCount(parse func(io.Reader) (*artifact.Contents, error)) *streamCount {
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

// CountInBatches runs the "SELECT name, count" queries 200 at a time (UNION ALL), reading
// "name<TAB>count" lines into m.
func CountInBatches(queries []string, run func(string) (string, error), m map[string]int64) error {
	for len(queries) > 0 {
		n := min(len(queries), 200)
		out, err := run(strings.Join(queries[:n], "\nUNION ALL\n"))
		if err != nil {
			return fmt.Errorf("counting rows: %w", err)
		}
		if err := ParseCounts(out, m); err != nil {
			return err
		}
		queries = queries[n:]
	}
	return nil
}

// ParseCounts reads "name<TAB>count" lines into m.
func ParseCounts(out string, m map[string]int64) error {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, '\t')
		if i < 0 {
			return fmt.Errorf("unexpected output %q", line)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line[i+1:]), 10, 64)
		if err != nil {
			return fmt.Errorf("unexpected count in %q", line)
		}
		m[line[:i]] = n
	}
	return nil
}

// WaitFor retries ready until it succeeds, the container stops, or timeout passes.
func WaitFor(ctx context.Context, c *containers.Container, timeout time.Duration, what string, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := c.Refresh(ctx); err != nil {
			return err
		}
		if !c.Running {
			return fmt.Errorf("%s exited before it was ready: see its log (docker logs %s)", c, c.Name)
		}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		last = ready(tctx)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready in %s: %w", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
