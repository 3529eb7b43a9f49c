//go:build linux

package inplace

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

var _ strategy.IncrementalWorker = (*session)(nil)

// BackupIncremental writes the incremental stream of the roots to out, read in this process
// (the same walk as a worker's), taking req.Parent as it goes.
func (s *session) BackupIncremental(ctx context.Context, req strategy.IncrementalWork, out io.Writer, progress func(int64)) (*meta.Stats, error) {
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return nil, err
	}
	var parent *meta.Cursor
	if req.Parent != nil {
		parent = meta.NewCursor(meta.NewDecoder(req.Parent))
	}
	cw := &counter{w: out}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(time.Second / 2)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if progress != nil {
					progress(cw.n.Load())
				}
			}
		}
	}()
	st, err := tree.ArchiveIncremental(ctx, s.roots, s.mounts, excl, parent, cw)
	close(stop)
	<-ticked
	if err != nil {
		return nil, err
	}
	if parent != nil {
		if err := parent.Drain(); err != nil {
			return nil, err
		}
	}
	if progress != nil {
		progress(cw.n.Load())
	}
	return st, nil
}

type counter struct {
	w io.Writer
	n atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
