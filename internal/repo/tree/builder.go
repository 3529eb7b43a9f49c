package tree

import (
	"fmt"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Builder makes a snapshot's trees bottom-up from entries added depth first: each
// directory's entries after it and before anything outside it (the order of a tar stream or
// a directory walk). A directory is encoded, and given to store, once the first entry outside
// it arrives: memory holds only the directories on the current path.
type Builder struct {
	stack []*openDir
	store func(dir string, encoded []byte) (blob.ID, error)
	Dirs  int64 // directories stored, the root included
}

type openDir struct {
	path  string // "" for the root
	node  Node
	nodes []Node
}

// NewBuilder returns a builder; store stores an encoded tree and returns its blob ID.
func NewBuilder(store func(dir string, encoded []byte) (blob.ID, error)) *Builder {
	return &Builder{store: store, stack: []*openDir{{node: Node{Type: Dir, Mode: 0o755}}}}
}

// SetRoot sets the root directory's metadata.
func (b *Builder) SetRoot(meta Node) {
	meta.Type = Dir
	b.stack[0].node = meta
}

// AddDir opens directory p (a clean, non-empty path); its entries follow.
func (b *Builder) AddDir(p string, meta Node) error {
	if err := b.enter(p); err != nil {
		return err
	}
	b.push(p, meta)
	return nil
}

// Add adds the entry p (a clean, non-empty path) that is not a directory.
func (b *Builder) Add(p string, n Node) error {
	if err := b.enter(p); err != nil {
		return err
	}
	n.Name = path.Base(p)
	if err := n.Validate(); err != nil {
		return err
	}
	d := b.stack[len(b.stack)-1]
	d.nodes = append(d.nodes, n)
	return nil
}

// Finish closes every directory and returns the root tree's ID.
func (b *Builder) Finish() (blob.ID, error) {
	for len(b.stack) > 1 {
		if err := b.closeDir(); err != nil {
			return blob.ID{}, err
		}
	}
	b.Dirs++
	return b.encode(b.stack[0])
}

// enter closes the open directories that do not hold p and opens implicit ones that do.
func (b *Builder) enter(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	for len(b.stack) > 1 && !within(dir, b.stack[len(b.stack)-1].path) {
		if err := b.closeDir(); err != nil {
			return err
		}
	}
	for top := b.stack[len(b.stack)-1]; top.path != dir; top = b.stack[len(b.stack)-1] {
		rest := strings.TrimPrefix(strings.TrimPrefix(dir, top.path), "/")
		b.push(path.Join(top.path, strings.SplitN(rest, "/", 2)[0]), Node{Mode: 0o755})
	}
	return nil
}

// within reports whether dir is d or inside it.
func within(dir, d string) bool {
	return d == "" || dir == d || strings.HasPrefix(dir, d+"/")
}

func (b *Builder) push(p string, meta Node) {
	meta.Name, meta.Type = path.Base(p), Dir
	b.stack = append(b.stack, &openDir{path: p, node: meta})
}

// closeDir stores the innermost open directory and adds it to its parent.
func (b *Builder) closeDir() error {
	d := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	id, err := b.encode(d)
	if err != nil {
		return err
	}
	d.node.Subtree = &id
	parent := b.stack[len(b.stack)-1]
	parent.nodes = append(parent.nodes, d.node)
	b.Dirs++
	return nil
}

func (b *Builder) encode(d *openDir) (blob.ID, error) {
	enc, err := Encode(&Tree{Nodes: d.nodes})
	if err != nil {
		return blob.ID{}, fmt.Errorf("directory %q: %w", "/"+d.path, err)
	}
	return b.store(d.path, enc)
}
