package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Sink receives a restore's entries (tree.Sink).
type Sink = tree.Sink

// Restore streams the snapshot's entries under paths (all when empty) to sink, reading every
// pack at most once while it is cached and verifying every blob. A refused or damaged blob
// fails the restore before its bytes reach the sink.
func (rd *Reader) Restore(ctx context.Context, s *Snapshot, paths []string, sink Sink) error {
	if err := tree.Restore(ctx, rd, s.Tree, paths, sink); err != nil {
		return fmt.Errorf("restoring snapshot %s: %w", short(s.ID), err)
	}
	return nil
}

func short(id string) string { return id[:min(12, len(id))] }

// Export writes the snapshot as a tar stream (what a full backup's archive holds).
func (rd *Reader) Export(ctx context.Context, s *Snapshot, w io.Writer) error {
	ts := tree.NewTarSink(w)
	if err := rd.Restore(ctx, s, nil, ts); err != nil {
		return err
	}
	return ts.Close()
}
