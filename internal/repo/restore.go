package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Sink receives a restore's entries in tree order (a directory before its entries, entries
// by name). content streams a regular file's bytes (nil for other entries); a hard link's
// LinkTarget names an entry the sink already received.
type Sink interface {
	Entry(ctx context.Context, p string, n *tree.Node, content io.Reader) error
}

// Restore streams the snapshot's entries under paths (all when empty) to sink, reading every
// pack at most once while it is cached and verifying every blob. A refused or damaged blob
// fails the restore before its bytes reach the sink.
func (rd *Reader) Restore(ctx context.Context, s *Snapshot, paths []string, sink Sink) error {
	var sel []string
	for _, p := range paths {
		c, err := tree.CleanPath(p)
		if err != nil {
			return err
		}
		if c == "" {
			sel = nil
			break
		}
		sel = append(sel, c)
	}
	hl := tree.NewLinks(sel)
	err := rd.Walk(ctx, s.Tree, func(p string, n *tree.Node) error {
		in, descend := tree.Selected(sel, p)
		if !in && !descend {
			return SkipDir
		}
		if !in && n.Type != tree.Dir {
			return nil
		}
		return rd.emit(ctx, s, p, n, sink, hl)
	})
	if err != nil {
		return fmt.Errorf("restoring snapshot %s: %w", short(s.ID), err)
	}
	return nil
}

func (rd *Reader) emit(ctx context.Context, s *Snapshot, p string, n *tree.Node, sink Sink, hl *tree.Links) error {
	switch {
	case n.Type == tree.File && hl.MovedTo[p] != "":
		link := *n
		link.Type, link.LinkTarget, link.Content = tree.Hardlink, hl.MovedTo[p], nil
		return sink.Entry(ctx, p, &link, nil)
	case n.Type == tree.File:
		if n.NLink > 1 {
			hl.Emitted[p] = true
		}
		return sink.Entry(ctx, p, n, rd.Content(ctx, n))
	case n.Type == tree.Hardlink && !hl.Before(n.LinkTarget, p) && hl.MovedTo[n.LinkTarget] == "":
		target, err := rd.Lookup(ctx, s.Tree, n.LinkTarget)
		if err != nil {
			return err
		}
		if target == nil || target.Type != tree.File {
			return fmt.Errorf("hard link %q: its target %q is not a file in the snapshot", p, n.LinkTarget)
		}
		hl.MovedTo[n.LinkTarget] = p
		file := *target
		file.Name = n.Name
		return sink.Entry(ctx, p, &file, rd.Content(ctx, &file))
	case n.Type == tree.Hardlink && hl.MovedTo[n.LinkTarget] != "":
		link := *n
		link.LinkTarget = hl.MovedTo[n.LinkTarget]
		return sink.Entry(ctx, p, &link, nil)
	}
	return sink.Entry(ctx, p, n, nil)
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
