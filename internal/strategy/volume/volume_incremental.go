package volume

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// BackupIncremental writes an incremental backup's stream of the service's paths to out
// (strategy.IncrementalWorker): read in this process or by a worker container beside the
// data, files unchanged since the parent (its metadata: parent, nil for none) sent
// header-only, unread. It fails with strategy.ErrNoWorker before reading anything when
// neither can be used (the caller then backs up through the Engine's archive API).
func (v *Strategy) BackupIncremental(ctx context.Context, c *containers.Container, parent io.Reader, out io.Writer, progress func(int64)) (strategy.Source, *meta.Stats, error) {
	paths, err := v.pathsFor(c)
	if err != nil {
		return nil, nil, strategy.StepErr(c, "copy", err)
	}
	s, err := v.openWorker(ctx, c, paths, strategy.WorkerAccess{})
	if err != nil {
		return nil, nil, err
	}
	iw, ok := s.(strategy.IncrementalWorker)
	if !ok {
		_ = s.Close()
		return nil, nil, fmt.Errorf("%w: the %s data path makes no incremental stream", strategy.ErrNoWorker, DataPathText(dataPathOf(s)))
	}
	st, err := iw.BackupIncremental(ctx, strategy.IncrementalWork{Exclude: v.exclude.Patterns(), Parent: parent}, out, progress)
	if err != nil {
		_ = s.Close()
		return nil, nil, strategy.StepErr(c, "copy", err)
	}
	v.mu.Lock()
	v.done = append(v.done, s) // Settle waits for its removal
	v.mu.Unlock()
	return v.source(paths, dataPathOf(s)), st, nil
}
