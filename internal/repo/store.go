package repo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
)

func packKey(id blob.ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// maxPack bounds a pack's size when it is read.
const maxPack = 1 << 30

// LoadIndex reads every index file. It returns the index and the index files' keys. An
// index file that cannot be read fails it: a prune must know every pack that is indexed.
func (r *Repo) LoadIndex(ctx context.Context) (*index.Index, []string, error) {
	return r.loadIndex(ctx, indexStrict, nil)
}

// indexMode says what loadIndex does with an index file it cannot take.
type indexMode int

const (
	indexStrict  indexMode = iota // fail (check)
	indexLenient                  // pass over it with a warning (restores, backups)
	// indexPrune: pass over one that was read whole but is refused (not an index file, or not
	// signed by a trusted key: junk put there, a write cut short) and return its key among the
	// keys, for the prune to delete with the old index files; fail on any other error. The
	// prune still refuses when a referenced blob is then not indexed in an existing pack.
	indexPrune
)

// errRefusedIndex is wrapped when an index file was read whole but is not taken.
var errRefusedIndex = errors.New("refused")

// loadIndex reads every index file; lenient passes over (with a warning) an index file that
// cannot be read or decoded, for restores and backups: every blob they take is checked
// against its ID, and a backup that misses an index entry stores the blob again, so a junk
// object under index/ cannot stop them. (Prune and check are strict.)
//
// Given stored (the packs on the target), a pack not in it is left out: an index file put
// back after a prune deleted its packs (its signature is still good) must not make a backup
// deduplicate against them.
func (r *Repo) loadIndex(ctx context.Context, mode indexMode, stored map[blob.ID]int64) (*index.Index, []string, error) {
	x := index.New()
	var keys []string
	for o, err := range r.t.List(ctx, "index/") {
		if err != nil {
			return nil, nil, fmt.Errorf("listing the index of repository %s in %s: %w", r.cfg.ID, r.t, err)
		}
		err := r.loadIndexFile(ctx, x, o.Key, stored)
		switch {
		case err == nil, ctx.Err() != nil:
		case mode == indexLenient:
			r.a.Log.Warn("an index file cannot be read: passed over (run check)", "repository", r.cfg.ID, "error", err)
			continue
		case mode == indexPrune && errors.Is(err, errRefusedIndex):
			r.a.Log.Warn("an index file is refused: the prune removes it", "repository", r.cfg.ID, "error", err)
			keys = append(keys, o.Key)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, o.Key)
	}
	x.Freeze()
	return x, keys, nil
}

func (r *Repo) loadIndexFile(ctx context.Context, x *index.Index, key string, stored map[blob.ID]int64) error {
	b, err := r.obj.Get(ctx, key, index.MaxFile)
	if err != nil {
		return fmt.Errorf("index file %s: %w", key, err)
	}
	if blob.Sum(b).String() != path.Base(key) {
		return fmt.Errorf("index file %s: its content does not hash to its name (damaged or tampered with): %w", key, errRefusedIndex)
	}
	f, err := index.Decode(r.keys, r.a.Trust, b)
	if err != nil {
		return fmt.Errorf("index file %s: %w: %w", key, errRefusedIndex, err)
	}
	if stored != nil {
		f.Packs = slices.DeleteFunc(f.Packs, func(p index.Pack) bool { _, ok := stored[p.ID]; return !ok })
	}
	if err := x.Add(f); err != nil {
		return fmt.Errorf("index file %s: %w", key, err)
	}
	return nil
}

// indexBlobsPerFile bounds an index file (about 7 MB of JSON).
const indexBlobsPerFile = 50_000

// writeIndex stores packs in one or more index files and returns their keys.
func (r *Repo) writeIndex(ctx context.Context, packs []index.Pack) ([]string, error) {
	var keys []string
	for _, f := range index.Split(packs, indexBlobsPerFile) {
		b, err := index.Encode(r.keys, r.a.Signer, f)
		if err != nil {
			return keys, err
		}
		key := "index/" + blob.Sum(b).String()
		if err := r.obj.Put(ctx, key, b, true); err != nil {
			return keys, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// fetchPack downloads a pack and checks its bytes against its ID (a reader that checks
// every blob it takes against its ID need not: hashing the rest would cost it a third more).
func (r *Repo) fetchPack(ctx context.Context, id blob.ID, size int64, hash bool) ([]byte, error) {
	var b []byte
	var err error
	if size > 0 {
		b, err = r.obj.GetSized(ctx, packKey(id), size)
	} else {
		b, err = r.obj.Get(ctx, packKey(id), maxPack)
	}
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id, err)
	}
	if size > 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("pack %s: %d bytes, the index says %d: %w", id, len(b), size, pack.ErrDamaged)
	}
	if hash && blob.Sum(b) != id {
		return nil, fmt.Errorf("pack %s: its content does not hash to its ID: %w", id, pack.ErrDamaged)
	}
	return b, nil
}
