package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/lock"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// PruneResult is what a prune did.
type PruneResult struct {
	DeletedPacks   int
	RewrittenPacks int
	UnindexedPacks int // left by interrupted backups, deleted
	DeletedBytes   int64
	KeptPacks      int
}

// RewriteBelow: a pack whose referenced bytes are less than this fraction of it is rewritten.
const RewriteBelow = 0.5

// Prune removes what no snapshot references, under an exclusive lock (see
// docs/repository-format.md): packs without a referenced blob and packs no index lists go,
// packs mostly garbage are rewritten. New packs and the new index are stored first, then the
// old index files are deleted, then the packs: at every step the index on the target lists
// only packs that exist for every blob a snapshot references.
func (r *Repo) Prune(ctx context.Context) (*PruneResult, error) {
	lk, err := r.locker().Acquire(ctx, lock.Exclusive)
	if err != nil {
		return nil, err
	}
	defer lk.Release(ctx)
	if err := r.hook(ctx, "prune.locked"); err != nil {
		return nil, err
	}
	idx, oldIndex, err := r.loadIndex(ctx, indexPrune, nil)
	if err != nil {
		return nil, err
	}
	used, err := r.usedBlobs(ctx, idx)
	if err != nil {
		return nil, err
	}
	stored, err := r.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	// Every referenced blob must be indexed in a pack that exists (what Check proves): else
	// the index is damaged or forged, and a pack it shows unreferenced may not be.
	for id := range used {
		places := idx.Places(id)
		if len(places) == 0 {
			return nil, fmt.Errorf("prune of repository %s: blob %s, referenced by a snapshot, is in no index file: run check (nothing was deleted)", r.cfg.ID, id)
		}
		if !slices.ContainsFunc(places, func(l index.Loc) bool { _, ok := stored[l.Pack]; return ok }) {
			return nil, fmt.Errorf("prune of repository %s: blob %s, referenced by a snapshot, is in pack %s, which is missing: run check (nothing was deleted)", r.cfg.ID, id, places[0].Pack)
		}
	}
	if err := r.hook(ctx, "prune.planned"); err != nil {
		return nil, err
	}
	plan, err := idx.PlanPrune(used, stored, RewriteBelow)
	if err != nil {
		return nil, fmt.Errorf("prune of repository %s: %w", r.cfg.ID, err)
	}
	newPacks, err := r.rewrite(ctx, plan.Rewrite, used)
	if err != nil {
		return nil, err
	}
	if err := r.hook(ctx, "prune.rewritten"); err != nil {
		return nil, err
	}
	if err := lk.Valid(); err != nil {
		return nil, err
	}
	return r.replaceIndex(ctx, lk, plan, append(plan.Keep, newPacks...), oldIndex)
}

// usedBlobs walks every snapshot; a snapshot that cannot be read stops the prune.
func (r *Repo) usedBlobs(ctx context.Context, idx *index.Index) (map[blob.ID]struct{}, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: a snapshot cannot be read, so what it references is unknown (forget it first): %w", err)
	}
	used := map[blob.ID]struct{}{}
	rd := r.readerWith(idx)
	for _, s := range snaps {
		used[s.Tree] = struct{}{}
		err := rd.Walk(ctx, s.Tree, func(p string, n *tree.Node) error {
			if n.Type == tree.Dir {
				if _, ok := used[*n.Subtree]; ok {
					return SkipDir
				}
				used[*n.Subtree] = struct{}{}
			}
			for _, id := range n.Content {
				used[id] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prune: snapshot %s: %w", short(s.ID), err)
		}
	}
	return used, nil
}

// rewrite copies the referenced blobs of packs into new packs (stored bytes as they are,
// after checking them).
func (r *Repo) rewrite(ctx context.Context, packs []index.Pack, used map[blob.ID]struct{}) ([]index.Pack, error) {
	if len(packs) == 0 {
		return nil, nil
	}
	var out []index.Pack
	b := pack.NewBuilder(r.a.PackSize)
	flush := func() error {
		if b.Count() == 0 {
			return nil
		}
		data, id, entries, err := b.Finish(r.keys)
		if err != nil {
			return err
		}
		if err := r.obj.Put(ctx, packKey(id), data, true); err != nil {
			return err
		}
		out = append(out, index.Pack{ID: id, Size: int64(len(data)), Blobs: entries})
		b = pack.NewBuilder(r.a.PackSize)
		return nil
	}
	var buf []byte
	for _, p := range packs {
		data, err := r.fetchPack(ctx, p.ID, p.Size, true)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Blobs {
			if _, ok := used[e.ID]; !ok {
				continue
			}
			st, err := pack.Stored(data, e)
			if err == nil {
				buf, err = r.keys.Decode(buf[:0], st, e.Comp, int(e.Raw), e.ID)
			}
			if err != nil {
				return nil, fmt.Errorf("prune: rewriting pack %s: %w", p.ID, err)
			}
			b.Add(e.ID, e.Type, e.Comp, st, int(e.Raw))
			if b.Size() >= r.a.PackSize {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, flush()
}

// replaceIndex stores the new index, then deletes the old index files, then the packs.
func (r *Repo) replaceIndex(ctx context.Context, lk *lock.Lock, plan index.Plan, packs []index.Pack, oldIndex []string) (*PruneResult, error) {
	newIndex, err := r.writeIndex(ctx, packs)
	if err != nil {
		return nil, err
	}
	if err := r.hook(ctx, "prune.index-written"); err != nil {
		return nil, err
	}
	// A prune stalled so long that its lock went stale may have a backup beside it that
	// deduplicated against what it is about to delete: it deletes nothing then (the next
	// prune finishes the job). Checked again before each deletion.
	if err := lk.Valid(); err != nil {
		return nil, err
	}
	isNew := map[string]bool{}
	for _, k := range newIndex {
		isNew[k] = true
	}
	for _, k := range oldIndex {
		if isNew[k] {
			continue // the same content: kept
		}
		if err := lk.Valid(); err != nil {
			return nil, err
		}
		if err := r.t.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("prune: deleting index file %s in %s: %w", k, r.t, err)
		}
	}
	if err := r.hook(ctx, "prune.old-index-deleted"); err != nil {
		return nil, err
	}
	res := &PruneResult{UnindexedPacks: plan.Unindexed, RewrittenPacks: len(plan.Rewrite), KeptPacks: len(packs)}
	// A pack the new index lists is never deleted: an unencrypted repository's rewrite is
	// deterministic, so it may have made again a pack planned for deletion as unindexed (left
	// by a prune that crashed after its rewrite).
	indexed := map[blob.ID]bool{}
	for _, p := range packs {
		indexed[p.ID] = true
	}
	var errs []error
	for _, id := range append(plan.Delete, packIDs(plan.Rewrite)...) {
		if indexed[id] {
			continue
		}
		if err := lk.Valid(); err != nil {
			return nil, err
		}
		if err := r.t.Delete(ctx, packKey(id)); err != nil {
			errs = append(errs, fmt.Errorf("prune: deleting pack %s in %s: %w", id, r.t, err))
			continue
		}
		res.DeletedPacks++
		if err := r.hook(ctx, "prune.pack-deleted"); err != nil {
			return nil, err
		}
	}
	for _, p := range plan.Rewrite {
		res.DeletedBytes += p.Size
	}
	res.DeletedBytes += plan.Bytes
	return res, errors.Join(errs...)
}

func packIDs(packs []index.Pack) []blob.ID {
	out := make([]blob.ID, len(packs))
	for i, p := range packs {
		out[i] = p.ID
	}
	return out
}
