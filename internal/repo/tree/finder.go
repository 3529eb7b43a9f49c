package tree

import (
	"context"
	"path"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Finder finds the entries of a snapshot's tree by path during a depth-first walk (a backup
// looking up the parent snapshot's entry of each file): it keeps only the trees of the
// directories on the current path.
type Finder struct {
	load  Loader
	root  blob.ID
	trees map[string]*Tree // by directory path ("" the root)
}

// NewFinder finds entries under root.
func NewFinder(load Loader, root blob.ID) *Finder {
	return &Finder{load: load, root: root, trees: map[string]*Tree{}}
}

// Find returns the entry at p (nil when there is none).
func (f *Finder) Find(ctx context.Context, p string) (*Node, error) {
	p, err := CleanPath(p)
	if err != nil || p == "" {
		return nil, err
	}
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	for d := range f.trees {
		if !within(dir, d) {
			delete(f.trees, d) // left behind by the walk
		}
	}
	t, err := f.tree(ctx, dir)
	if err != nil || t == nil {
		return nil, err
	}
	n, _ := t.Find(path.Base(p))
	return n, nil
}

func (f *Finder) tree(ctx context.Context, dir string) (*Tree, error) {
	if t, ok := f.trees[dir]; ok {
		return t, nil
	}
	id := f.root
	if dir != "" {
		parent := path.Dir(dir)
		if parent == "." {
			parent = ""
		}
		pt, err := f.tree(ctx, parent)
		if err != nil || pt == nil {
			return nil, err
		}
		n, ok := pt.Find(path.Base(dir))
		if !ok || n.Type != Dir {
			return nil, nil
		}
		id = *n.Subtree
	}
	t, err := f.load(ctx, id)
	if err != nil {
		return nil, err
	}
	f.trees[dir] = t
	return t, nil
}

// Unchanged reports whether a file's metadata matches its entry in the parent snapshot (same
// size, modification and change times, inode): its content need not be read again.
func Unchanged(parent, n *Node) bool {
	return parent != nil && parent.Type == File && n.Type == File && parent.Size == n.Size &&
		parent.MTime.Equal(n.MTime) && parent.CTime.Equal(n.CTime) && parent.Inode == n.Inode
}
