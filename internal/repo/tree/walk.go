package tree

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Loader loads (and verifies) a tree blob.
type Loader func(ctx context.Context, id blob.ID) (*Tree, error)

// WalkFunc is called for each entry, in tree order (a directory before its entries, entries
// by name); p is the entry's path in the snapshot. Returning SkipDir skips a directory.
type WalkFunc func(p string, n *Node) error

// SkipDir makes Walk skip a directory's entries.
//
//lint:ignore ST1012 named as fs.SkipDir, which it plays the part of
var SkipDir = errors.New("skip this directory")

// Walk visits every entry of the tree root, depth first.
func Walk(ctx context.Context, load Loader, root blob.ID, fn WalkFunc) error {
	return walk(ctx, load, "", root, fn)
}

func walk(ctx context.Context, load Loader, dir string, id blob.ID, fn WalkFunc) error {
	t, err := load(ctx, id)
	if err != nil {
		return fmt.Errorf("directory %q: %w", "/"+dir, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if err == SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == Dir {
			if err := walk(ctx, load, p, *n.Subtree, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Lookup finds the entry at path p (slash-separated, relative) in the tree root: nil when
// there is none.
func Lookup(ctx context.Context, load Loader, root blob.ID, p string) (*Node, error) {
	p = strings.Trim(p, "/")
	if p == "" || path.Clean(p) != p {
		return nil, fmt.Errorf("path %q is not a clean relative path to an entry", p)
	}
	id := root
	parts := strings.Split(p, "/")
	for i, name := range parts {
		t, err := load(ctx, id)
		if err != nil {
			return nil, err
		}
		n, ok := t.Find(name)
		if !ok || (i < len(parts)-1 && n.Type != Dir) {
			return nil, nil
		}
		if i == len(parts)-1 {
			return n, nil
		}
		id = *n.Subtree
	}
	return nil, nil
}

// Selected reports whether path p is one of sel or inside one (all are, when sel is empty),
// and whether it is an ancestor of one.
func Selected(sel []string, p string) (in, ancestor bool) {
	if len(sel) == 0 {
		return true, true
	}
	for _, s := range sel {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true, true
		}
		if strings.HasPrefix(s, p+"/") {
			ancestor = true
		}
	}
	return false, ancestor
}

// CleanPath checks an entry's path: relative, slash-separated, no "." or ".." parts; the
// root is "".
func CleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return "", nil
	}
	if path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return "", fmt.Errorf("path %q is not a clean relative path", p)
	}
	return p, nil
}
