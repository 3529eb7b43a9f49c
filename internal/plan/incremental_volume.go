package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/incremental"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// changedFiles is a strategy that reads only what changed since a parent snapshot (the volume
// strategy, in this process or in a worker container beside the data).
type changedFiles interface {
	BackupIncremental(ctx context.Context, c *containers.Container, parent io.Reader, out io.Writer, progress func(int64)) (strategy.Source, *meta.Stats, error)
}

// errNoWalk: no walk of changed files can run here (no worker, no local read): nothing was
// written, and the archive API's stream is ingested instead.
var errNoWalk = errors.New("no walk of changed files here")

// ingestChanged streams into w only what changed since parent (nil: none): the files the
// walk finds unchanged (size, mtime, ctime, inode) are taken from parent without being read.
// It fails with errNoWalk, having written nothing, when no such walk can run here.
func (b *Backup) ingestChanged(ctx context.Context, w *repo.Writer, cf changedFiles, parent *repo.Snapshot) (strategy.Source, *artifact.Contents, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var md io.Reader
	var finder *tree.Finder
	if parent != nil {
		mr, mw := io.Pipe()
		defer mr.Close() // a walk that stopped early: the metadata's writer stops too
		go func() { mw.CloseWithError(incremental.ParentMetadata(ctx, w.Reader(), parent, mw)) }()
		md, finder = mr, w.Finder(parent.Tree)
	}
	pr, pw := incremental.Pipe(4, 256<<10) // (8 × 1 MiB read ahead was no faster)
	in := &countingReader{r: pr}
	type result struct {
		contents *artifact.Contents
		err      error
	}
	ingested := make(chan result, 1)
	go func() {
		c, err := incremental.IngestMarked(ctx, w, in, finder)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // what follows the tar's end, if anything
		}
		pr.CloseWithError(err)
		ingested <- result{c, err}
	}()
	src, st, err := cf.BackupIncremental(ctx, b.Container, md, pw, b.spec.Progress)
	pw.CloseWithError(err)
	res := <-ingested
	switch {
	case err != nil && errors.Is(err, strategy.ErrNoWorker) && in.n.Load() == 0:
		return nil, nil, fmt.Errorf("%w: %w", errNoWalk, err)
	case err != nil:
		return nil, nil, err
	case res.err != nil:
		return nil, nil, fmt.Errorf("ingesting the backup of %s into the repository: %w", b.Container, res.err)
	}
	b.spec.Log.Info("incremental backup: what was unchanged since the parent snapshot was not read",
		"entries", st.Files, "files_read", st.Read, "files_unchanged", st.Unchanged, "unchanged_bytes", st.UnchangedBytes)
	return src, res.contents, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
