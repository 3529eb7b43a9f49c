package index

import (
	"fmt"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Plan is what a prune does with each pack.
type Plan struct {
	Keep      []Pack    // referenced: they stay, and stay indexed
	Rewrite   []Pack    // mostly garbage: their referenced blobs move to new packs
	Delete    []blob.ID // no blob referenced, or in no index (left by an interrupted backup)
	Unindexed int       // how many of Delete are in no index
	Bytes     int64     // the size of Delete
}

// PlanPrune sorts the packs stored (ID → size) by the blobs used: a pack with referenced
// bytes below rewriteBelow of its size is rewritten.
func (x *Index) PlanPrune(used map[blob.ID]struct{}, stored map[blob.ID]int64, rewriteBelow float64) (Plan, error) {
	var plan Plan
	indexed := map[blob.ID]bool{}
	for _, p := range x.Packs() {
		indexed[p.ID] = true
		var usedBytes int64
		for _, e := range p.Blobs {
			if _, ok := used[e.ID]; ok {
				usedBytes += int64(e.Length)
			}
		}
		_, exists := stored[p.ID]
		switch {
		case usedBytes == 0:
			if exists {
				plan.Delete = append(plan.Delete, p.ID)
				plan.Bytes += p.Size
			}
		case !exists && !x.elsewhere(p, used, stored):
			return plan, fmt.Errorf("pack %s holds referenced blobs but is missing: run check (nothing was deleted)", p.ID)
		case !exists:
			// Missing, but each referenced blob of it is in another pack that exists (an old
			// index file put back after a prune): it drops out of the index.
		case float64(usedBytes) < rewriteBelow*float64(p.Size):
			plan.Rewrite = append(plan.Rewrite, p)
		default:
			plan.Keep = append(plan.Keep, p)
		}
	}
	for id, size := range stored {
		if !indexed[id] {
			plan.Delete = append(plan.Delete, id)
			plan.Unindexed++
			plan.Bytes += size
		}
	}
	return plan, nil
}

// elsewhere reports whether every referenced blob of pack p is also in another stored pack.
func (x *Index) elsewhere(p Pack, used map[blob.ID]struct{}, stored map[blob.ID]int64) bool {
	for _, e := range p.Blobs {
		if _, ok := used[e.ID]; !ok {
			continue
		}
		found := false
		for _, l := range x.Places(e.ID) {
			if _, ok := stored[l.Pack]; ok && l.Pack != p.ID {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
