package repo

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/chunker"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/lock"
	"github.com/docker-backup/docker-backup/internal/repo/packer"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Writer makes one snapshot. Entries are added in depth-first order, each directory's
// entries after it and before anything outside it (the order of a tar stream or a
// directory walk); a directory is encoded once the first entry outside it arrives, so memory
// holds only the directories on the current path. Not safe for concurrent use: the
// parallelism is inside (compression and encryption fan out to Access.Workers goroutines).
type Writer struct {
	r      *Repo
	ctx    context.Context
	lock   *lock.Lock
	idx    *index.Index
	seen   index.Set // new blobs of this snapshot
	pipe   *packer.Packer
	stack  []*openDir
	chunks *chunker.Chunker
	hasher hash.Hash
	totals Totals
	done   bool
}

type openDir struct {
	path  string // "" for the root
	node  tree.Node
	nodes []tree.Node
}

// ErrNotInRepository is wrapped by Reuse when the parent's content is gone from the index
// (the caller then reads the file with AddFile).
var ErrNotInRepository = errors.New("the parent's content is not in the repository")

// NewWriter starts a snapshot: it takes a shared lock and loads the index.
func (r *Repo) NewWriter(ctx context.Context) (*Writer, error) {
	if r.a.Signer == nil {
		return nil, fmt.Errorf("repository %s: writing needs the signing key", r.cfg.ID)
	}
	if r.cfg.Encrypted && r.master == nil {
		return nil, fmt.Errorf("repository %s: writing an encrypted repository needs its key file", r.cfg.ID)
	}
	lk, err := r.locker().Acquire(ctx, lock.Shared)
	if err != nil {
		return nil, err
	}
	if err := r.hook(ctx, "backup.locked"); err != nil {
		lk.Release(ctx)
		return nil, err
	}
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		lk.Release(ctx)
		return nil, err
	}
	w := &Writer{r: r, ctx: ctx, lock: lk, idx: idx,
		stack: []*openDir{{node: tree.Node{Type: tree.Dir, Mode: 0o755}}}, hasher: r.keys.Hasher()}
	w.chunks = r.table.New(nil)
	w.pipe = packer.New(ctx, packer.Config{Keys: r.keys, PackSize: r.a.PackSize, Workers: r.a.Workers, Uploads: r.a.Uploads,
		Store: func(ctx context.Context, id blob.ID, b []byte) error {
			if err := r.put(ctx, packKey(id), b, true); err != nil {
				return err
			}
			return r.hook(ctx, "backup.pack-uploaded")
		},
		// Packs stored and indexed before the snapshot are garbage until it is written,
		// removed by a prune if it never is.
		Index: func(ctx context.Context, packs []index.Pack) error {
			_, err := r.writeIndex(ctx, packs)
			return err
		},
		IndexEvery: indexBlobsPerFile,
	})
	return w, nil
}

// Index is the index the writer deduplicates against.
func (w *Writer) Index() *index.Index { return w.idx }

// enter closes the open directories that do not hold p, opens implicit ones that do, and
// returns p's directory.
func (w *Writer) enter(p string) (*openDir, error) {
	if w.done {
		return nil, errors.New("the snapshot is already committed or aborted")
	}
	if err := w.pipe.Err(); err != nil {
		return nil, err
	}
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	for len(w.stack) > 1 && !within(dir, w.stack[len(w.stack)-1].path) {
		if err := w.closeDir(); err != nil {
			return nil, err
		}
	}
	for top := w.stack[len(w.stack)-1]; top.path != dir; top = w.stack[len(w.stack)-1] {
		rest := strings.TrimPrefix(dir, top.path)
		next := strings.SplitN(strings.TrimPrefix(rest, "/"), "/", 2)[0]
		w.push(path.Join(top.path, next), tree.Node{Type: tree.Dir, Mode: 0o755})
	}
	return w.stack[len(w.stack)-1], nil
}

// within reports whether dir is d or inside it.
func within(dir, d string) bool {
	return d == "" || dir == d || strings.HasPrefix(dir, d+"/")
}

func (w *Writer) push(p string, meta tree.Node) {
	meta.Name, meta.Type = path.Base(p), tree.Dir
	w.stack = append(w.stack, &openDir{path: p, node: meta})
}

// closeDir encodes the innermost open directory as a tree blob and adds it to its parent.
func (w *Writer) closeDir() error {
	d := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	id, err := w.storeTree(d)
	if err != nil {
		return err
	}
	d.node.Subtree = &id
	parent := w.stack[len(w.stack)-1]
	parent.nodes = append(parent.nodes, d.node)
	w.totals.Dirs++
	return nil
}

func (w *Writer) storeTree(d *openDir) (blob.ID, error) {
	b, err := tree.Encode(&tree.Tree{Nodes: d.nodes})
	if err != nil {
		return blob.ID{}, fmt.Errorf("directory %q: %w", d.path, err)
	}
	id := w.r.keys.BlobID(b)
	return id, w.store(id, blob.Tree, b)
}

// store queues a blob unless the repository or this snapshot has it.
func (w *Writer) store(id blob.ID, t blob.Type, b []byte) error {
	if w.seen.Has(id) || w.idx.Has(id) {
		return nil
	}
	w.seen.Add(id)
	return w.pipe.Add(id, t, b)
}

// AddDir adds a directory (its entries follow). The path "" (or ".") sets the root's metadata.
func (w *Writer) AddDir(p string, meta tree.Node) error {
	p, err := tree.CleanPath(p)
	if err != nil {
		return err
	}
	if p == "" {
		meta.Type = tree.Dir
		w.stack[0].node = meta
		return nil
	}
	if _, err := w.enter(p); err != nil {
		return err
	}
	w.push(p, meta)
	return nil
}

// AddNode adds an entry without content: a symbolic link, hard link (LinkTarget is the
// first link's path in the snapshot), named pipe or device.
func (w *Writer) AddNode(p string, meta tree.Node) error {
	if meta.Type == tree.File || meta.Type == tree.Dir {
		return fmt.Errorf("%q: AddNode is not for a %s (AddFile, AddDir)", p, meta.Type)
	}
	return w.add(p, meta)
}

func (w *Writer) add(p string, meta tree.Node) error {
	p, err := tree.CleanPath(p)
	if err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("an entry needs a name (the root is a directory)")
	}
	d, err := w.enter(p)
	if err != nil {
		return err
	}
	meta.Name = path.Base(p)
	if err := meta.Validate(); err != nil {
		return err
	}
	d.nodes = append(d.nodes, meta)
	return nil
}

// AddFile adds a regular file, reading its content from r (cut into chunks; new chunks are
// stored). meta.Size is set to what was read.
func (w *Writer) AddFile(p string, meta tree.Node, r io.Reader) error {
	meta.Type, meta.Content, meta.Size = tree.File, nil, 0
	w.chunks.Reset(r)
	for {
		c, err := w.chunks.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %q: %w", p, err)
		}
		w.hasher.Reset()
		w.hasher.Write(c)
		var id blob.ID
		w.hasher.Sum(id[:0])
		if err := w.store(id, blob.Data, c); err != nil {
			return err
		}
		meta.Content = append(meta.Content, id)
		meta.Size += int64(len(c))
	}
	w.totals.Files++
	w.totals.Bytes += meta.Size
	return w.add(p, meta)
}

// Reuse adds a file unchanged since the parent snapshot (same size, mtime, ctime, inode)
// with the parent's content, reading nothing. It fails with ErrNotInRepository when the
// content is no longer indexed.
func (w *Writer) Reuse(p string, meta tree.Node, parent *tree.Node) error {
	for _, id := range parent.Content {
		if !w.seen.Has(id) && !w.idx.Has(id) {
			return fmt.Errorf("%q: blob %s: %w", p, id, ErrNotInRepository)
		}
	}
	meta.Type, meta.Content, meta.Size = tree.File, parent.Content, parent.Size
	w.totals.Files++
	w.totals.ReusedFiles++
	w.totals.Bytes += meta.Size
	return w.add(p, meta)
}
