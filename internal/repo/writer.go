package repo

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cespare/xxhash/v2"
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
// parallelism is inside (hashing, compression and encryption fan out to Access.Workers
// goroutines each).
type Writer struct {
	r      *Repo
	ctx    context.Context
	lock   *lock.Lock
	idx    *index.Index
	seen   index.Set // new blobs of this snapshot
	pipe   *packer.Packer
	trees  *tree.Builder
	chunks *chunker.Chunker
	hashes *packer.Hashers
	totals Totals
	done   bool
	hasher hash.Hash      // hashOne's
	xxh    *xxhash.Digest // AddFile's content hash
}

// hashWindow is how many chunks of a stream are hashed at once.
const hashWindow = 4

// smallFile: a file announced smaller is hashed on the caller's goroutine (AddFile).
const smallFile = 1 << 20

// hashOne is the ID of a chunk, hashed on this goroutine.
func (w *Writer) hashOne(c []byte) blob.ID {
	w.hasher.Reset()
	w.hasher.Write(c)
	var id blob.ID
	w.hasher.Sum(id[:0])
	return id
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
	// The packs first, then the index: a pack stored meanwhile by another backup is then
	// only left out (its blobs stored again), never one missing taken for there.
	stored, err := r.listPacks(ctx)
	if err != nil {
		lk.Release(ctx)
		return nil, err
	}
	idx, _, err := r.loadIndex(ctx, indexLenient, stored)
	if err != nil {
		lk.Release(ctx)
		return nil, err
	}
	w := &Writer{r: r, ctx: ctx, lock: lk, idx: idx, chunks: r.table.New(nil), hashes: packer.NewHashers(r.keys, r.a.Workers), hasher: r.keys.Hasher(), xxh: xxhash.New()}
	w.trees = tree.NewBuilder(func(dir string, b []byte) (blob.ID, error) {
		id := r.keys.BlobID(b)
		return id, w.store(id, blob.Tree, b)
	})
	w.pipe = packer.New(ctx, packer.Config{Keys: r.keys, PackSize: r.a.PackSize, Workers: r.a.Workers, Uploads: r.a.Uploads,
		Store: func(ctx context.Context, id blob.ID, b []byte) error {
			if err := r.obj.Put(ctx, packKey(id), b, true); err != nil {
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

// Finder finds the entries of a parent snapshot's tree root during the writer's walk (see
// Reader.Finder), reading trees through the writer's index: nothing more is loaded.
func (w *Writer) Finder(root blob.ID) *tree.Finder {
	return tree.NewFinder(w.Reader().Tree, root)
}

// Reader reads the repository through the writer's index (nothing more is loaded): a parent
// snapshot's trees, say, while the writer writes.
func (w *Writer) Reader() *Reader { return w.r.readerWith(w.idx) }

// Index is the index the writer deduplicates against.
func (w *Writer) Index() *index.Index { return w.idx }

// check fails once the writer cannot go on.
func (w *Writer) check() error {
	if w.done {
		return errors.New("the snapshot is already committed or aborted")
	}
	return w.pipe.Err()
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
	if err := w.check(); err != nil {
		return err
	}
	if p == "" {
		w.trees.SetRoot(meta)
		return nil
	}
	return w.trees.AddDir(p, meta)
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
	if err := w.check(); err != nil {
		return err
	}
	return w.trees.Add(p, meta)
}

// AddFile adds a regular file, reading its content from r (cut into chunks; new chunks are
// stored). meta.Size is set to what was read.
//
// A file announced small (meta.Size below smallFile: most files of a volume) is hashed on
// this goroutine: handing each one to a hashing goroutine and waiting for it costs more than
// the hashing, on a busy machine many times more.
func (w *Writer) AddFile(p string, meta tree.Node, r io.Reader) error {
	_, err := w.AddFileHashed(p, meta, r)
	return err
}

// AddFileHashed is AddFile, and returns the content's hash (tree.Node.ContentHash).
func (w *Writer) AddFileHashed(p string, meta tree.Node, r io.Reader) (uint64, error) {
	inline := meta.Size > 0 && meta.Size < smallFile
	meta.Type, meta.Content, meta.Size = tree.File, nil, 0
	w.xxh.Reset()
	var window []*packer.Pending // chunks being hashed, in order
	take := func() error {
		c := window[0]
		window = window[1:]
		id := c.Wait()
		meta.Content = append(meta.Content, id)
		meta.Size += int64(len(c.Data))
		err := w.store(id, blob.Data, c.Data)
		w.hashes.Release(c)
		return err
	}
	w.chunks.Reset(r)
	for {
		c, err := w.chunks.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("reading %q: %w", p, err)
		}
		w.xxh.Write(c)
		if inline && len(window) == 0 {
			id := w.hashOne(c)
			meta.Content = append(meta.Content, id)
			meta.Size += int64(len(c))
			if err := w.store(id, blob.Data, c); err != nil {
				return 0, err
			}
			continue
		}
		if window = append(window, w.hashes.Hash(c)); len(window) == hashWindow {
			if err := take(); err != nil {
				return 0, err
			}
		}
	}
	for len(window) > 0 {
		if err := take(); err != nil {
			return 0, err
		}
	}
	meta.ContentHash = w.xxh.Sum64()
	w.totals.Files++
	w.totals.Bytes += meta.Size
	return meta.ContentHash, w.add(p, meta)
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
	meta.Type, meta.Content, meta.Size, meta.ContentHash = tree.File, parent.Content, parent.Size, parent.ContentHash
	w.totals.Files++
	w.totals.ReusedFiles++
	w.totals.Bytes += meta.Size
	return w.add(p, meta)
}
