package tree

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Source is what a restore reads: trees, and files' content (valid until the next call).
type Source interface {
	Tree(ctx context.Context, id blob.ID) (*Tree, error)
	Content(ctx context.Context, n *Node) io.Reader
}

// Sink receives a restore's entries in tree order (a directory before its entries, entries
// by name). content streams a regular file's bytes (nil for other entries); a hard link's
// LinkTarget names an entry the sink already received.
type Sink interface {
	Entry(ctx context.Context, p string, n *Node, content io.Reader) error
}

// Restore streams the entries of the tree root under paths (all when empty) from src to sink.
func Restore(ctx context.Context, src Source, root blob.ID, paths []string, sink Sink) error {
	var sel []string
	for _, p := range paths {
		c, err := CleanPath(p)
		if err != nil {
			return err
		}
		if c == "" {
			sel = nil
			break
		}
		sel = append(sel, c)
	}
	hl := newLinks(sel)
	return Walk(ctx, src.Tree, root, func(p string, n *Node) error {
		in, descend := Selected(sel, p)
		if !in && !descend {
			return SkipDir
		}
		if !in && n.Type != Dir {
			return nil
		}
		return emit(ctx, src, root, p, n, sink, hl)
	})
}

func emit(ctx context.Context, src Source, root blob.ID, p string, n *Node, sink Sink, hl *links) error {
	switch {
	case n.Type == File && hl.MovedTo[p] != "":
		link := *n
		link.Type, link.LinkTarget, link.Content = Hardlink, hl.MovedTo[p], nil
		return sink.Entry(ctx, p, &link, nil)
	case n.Type == File:
		if n.NLink > 1 {
			hl.Emitted[p] = true
		}
		return sink.Entry(ctx, p, n, src.Content(ctx, n))
	case n.Type == Hardlink && !hl.Before(n.LinkTarget, p) && hl.MovedTo[n.LinkTarget] == "":
		target, err := Lookup(ctx, src.Tree, root, n.LinkTarget)
		if err != nil {
			return err
		}
		if target == nil || target.Type != File {
			return fmt.Errorf("hard link %q: its target %q is not a file in the snapshot", p, n.LinkTarget)
		}
		hl.MovedTo[n.LinkTarget] = p
		file := *target
		file.Name = n.Name
		return sink.Entry(ctx, p, &file, src.Content(ctx, &file))
	case n.Type == Hardlink && hl.MovedTo[n.LinkTarget] != "":
		link := *n
		link.LinkTarget = hl.MovedTo[n.LinkTarget]
		return sink.Entry(ctx, p, &link, nil)
	}
	return sink.Entry(ctx, p, n, nil)
}

// links keeps hard links restorable in tree order: a link met before its target (entries
// are sorted by name) carries the content, and the target becomes a link to it.
type links struct {
	Emitted map[string]bool   // files with several links, emitted
	MovedTo map[string]string // target → the path that carries its content
	sel     []string          // the paths restored (nil: all)
}

// Before reports whether the file target was emitted before the entry p: it comes first in
// tree order and is restored (a tar stream's files carry no link count to mark them).
func (hl *links) Before(target, p string) bool {
	if hl.Emitted[target] {
		return true
	}
	in, _ := Selected(hl.sel, target)
	return in && slices.Compare(strings.Split(target, "/"), strings.Split(p, "/")) < 0
}

// newLinks is the hard links of a restore of the paths sel (nil: all).
func newLinks(sel []string) *links {
	return &links{Emitted: map[string]bool{}, MovedTo: map[string]string{}, sel: sel}
}
