package repo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/index"
	"github.com/docker-backup/docker-backup/internal/repo/lock"
	"github.com/docker-backup/docker-backup/internal/repo/pack"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// CheckResult is what Check found.
type CheckResult struct {
	Snapshots int
	Packs     int
	Blobs     int
	ReadPacks int
	// Unindexed are packs no index file lists: left by an interrupted backup, removed by the
	// next prune. Not an error.
	Unindexed []string
	// Problems name the snapshot, pack or blob at fault.
	Problems []error
}

// Check proves the repository: every snapshot verifies and its trees and content are in the
// index, every indexed pack exists with its size; readData of the packs (0 to 1) are
// downloaded, hashed, and each of their blobs decrypted and checked against its ID. It holds a
// shared lock. The error joins the problems.
func (r *Repo) Check(ctx context.Context, readData float64) (*CheckResult, error) {
	lk, err := r.locker().Acquire(ctx, lock.Shared)
	if err != nil {
		return nil, err
	}
	defer lk.Release(ctx)
	res := &CheckResult{}
	idx, _, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := r.listPacks(ctx)
	if err != nil {
		return nil, err
	}
	packs := idx.Packs()
	res.Packs = len(packs)
	indexed := map[blob.ID]bool{}
	for _, p := range packs {
		indexed[p.ID] = true
		res.Blobs += len(p.Blobs)
		size, ok := stored[p.ID]
		switch {
		case !ok:
			res.Problems = append(res.Problems, fmt.Errorf("pack %s is in the index but missing from the target", p.ID))
		case size != p.Size:
			res.Problems = append(res.Problems, fmt.Errorf("pack %s is %d bytes, the index says %d", p.ID, size, p.Size))
		}
	}
	for id := range stored {
		if !indexed[id] {
			res.Unindexed = append(res.Unindexed, id.String())
		}
	}
	r.checkSnapshots(ctx, idx, stored, res)
	r.readPacks(ctx, packs, readData, res)
	return res, errors.Join(res.Problems...)
}

// listPacks lists the packs on the target with their sizes.
func (r *Repo) listPacks(ctx context.Context) (map[blob.ID]int64, error) {
	out := map[blob.ID]int64{}
	for o, err := range r.t.List(ctx, "data/") {
		if err != nil {
			return nil, fmt.Errorf("listing packs in %s: %w", r.t, err)
		}
		id, err := blob.ParseID(path.Base(o.Key))
		if err != nil {
			continue // not a pack (a temporary name of a target)
		}
		out[id] = o.Size
	}
	return out, nil
}

func (r *Repo) checkSnapshots(ctx context.Context, idx *index.Index, stored map[blob.ID]int64, res *CheckResult) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		res.Problems = append(res.Problems, err)
	}
	rd := r.readerWith(idx)
	checked := map[blob.ID]bool{}
	blobOK := func(id blob.ID) error {
		places := idx.Places(id)
		if len(places) == 0 {
			return fmt.Errorf("blob %s is not in the index", id)
		}
		for _, loc := range places {
			if _, ok := stored[loc.Pack]; ok {
				return nil
			}
		}
		return fmt.Errorf("blob %s is in pack %s, which is missing", id, places[0].Pack)
	}
	for _, s := range snaps {
		res.Snapshots++
		if err := blobOK(s.Tree); err != nil {
			res.Problems = append(res.Problems, fmt.Errorf("snapshot %s: root tree: %w", short(s.ID), err))
			continue
		}
		err := rd.Walk(ctx, s.Tree, func(p string, n *tree.Node) error {
			if n.Type == tree.Dir {
				if checked[*n.Subtree] {
					return SkipDir
				}
				checked[*n.Subtree] = true
				if err := blobOK(*n.Subtree); err != nil {
					return fmt.Errorf("%q: %w", p, err)
				}
			}
			for _, id := range n.Content {
				if err := blobOK(id); err != nil {
					return fmt.Errorf("%q: %w", p, err)
				}
			}
			return nil
		})
		if err != nil {
			res.Problems = append(res.Problems, fmt.Errorf("snapshot %s: %w", short(s.ID), err))
		}
	}
}

// readPacks downloads a fraction of the packs and verifies every blob in them.
func (r *Repo) readPacks(ctx context.Context, packs []index.Pack, fraction float64, res *CheckResult) {
	if fraction <= 0 {
		return
	}
	n := min(len(packs), int(math.Ceil(fraction*float64(len(packs)))))
	for _, i := range rand.Perm(len(packs))[:n] {
		p := packs[i]
		res.ReadPacks++
		if err := r.readPack(ctx, p); err != nil {
			res.Problems = append(res.Problems, err)
		}
	}
}

func (r *Repo) readPack(ctx context.Context, p index.Pack) error {
	b, err := r.fetchPack(ctx, p.ID, p.Size, true)
	if err != nil {
		return err
	}
	if err := pack.Verify(r.keys, b, p.Blobs); err != nil {
		return fmt.Errorf("pack %s: %w", p.ID, err)
	}
	return nil
}
