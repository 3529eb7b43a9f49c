package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Listing is the result of reading every manifest under a prefix of a target.
type Listing struct {
	Backups []*artifact.Manifest // newest first
	// Problems names manifests that could not be read, and artifacts whose manifest lies.
	Problems []string
}

// orphanNotice is how old an artifact without a manifest must be before List reports it: a
// backup writes its manifest right after its artifact.
const orphanNotice = 10 * time.Minute

// listWorkers bounds how many manifests are read at once.
const listWorkers = 8

// List reads the manifests under prefix, newest first. A target holding artifacts and
// manifests is all it needs: no catalog, no database. Manifests are read a few at a time,
// each at most artifact.MaxManifestSize.
func List(ctx context.Context, t target.Target, prefix string) (*Listing, error) {
	objects, err := t.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	var keys []string
	for _, o := range objects {
		present[o.Key] = true
		if strings.HasSuffix(o.Key, artifact.ManifestSuffix) {
			keys = append(keys, strings.TrimSuffix(o.Key, artifact.ManifestSuffix))
		}
	}
	type result struct {
		m   *artifact.Manifest
		err error
	}
	results := make([]result, len(keys))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(listWorkers, len(keys)) {
		wg.Go(func() {
			for i := range jobs {
				m, err := ReadManifest(ctx, t, keys[i])
				results[i] = result{m, err}
			}
		})
	}
	for i := range keys {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &Listing{}
	for i, r := range results {
		switch {
		case r.err != nil:
			out.Problems = append(out.Problems, r.err.Error())
		case !present[keys[i]]:
			out.Problems = append(out.Problems, fmt.Sprintf("%s: the manifest's artifact is missing", keys[i]))
		default:
			out.Backups = append(out.Backups, r.m)
		}
	}
	for _, o := range orphans(objects) {
		if o.ModTime.Before(time.Now().Add(-orphanNotice)) {
			out.Problems = append(out.Problems, fmt.Sprintf("%s: an artifact without its manifest, left by an interrupted backup (it is never restored, and removed by the next run's clean-up after %s)", o.Key, StaleAfter))
		}
	}
	sort.SliceStable(out.Backups, func(i, j int) bool {
		if !out.Backups[i].CreatedAt.Equal(out.Backups[j].CreatedAt) {
			return out.Backups[i].CreatedAt.After(out.Backups[j].CreatedAt)
		}
		return out.Backups[i].Artifact > out.Backups[j].Artifact
	})
	return out, nil
}

// StaleAfter is how old the leftovers of an interrupted backup must be before Sweep removes
// them (and List reports them): a backup still running is younger.
const StaleAfter = 6 * time.Hour

// Sweep removes what interrupted backups left under dir (a service's directory) more than
// StaleAfter ago: artifacts whose manifest was never written (or was deleted by an
// interrupted prune), the target's temporary files or unfinished uploads. Nothing with a
// manifest is touched. It returns what it removed.
func Sweep(ctx context.Context, t target.Target, dir string) ([]string, error) {
	before := time.Now().Add(-StaleAfter)
	removed, err := target.RemoveStale(ctx, t, dir, before)
	if err != nil {
		return removed, err
	}
	objects, err := t.List(ctx, dir)
	if err != nil {
		return removed, err
	}
	for _, o := range orphans(objects) {
		if !o.ModTime.Before(before) {
			continue
		}
		if err := t.Delete(ctx, o.Key); err != nil {
			return removed, err
		}
		removed = append(removed, o.Key)
	}
	return removed, nil
}

// orphans are the objects that are neither a manifest nor the artifact of one.
func orphans(objects []target.Object) []target.Object {
	manifests := map[string]bool{}
	for _, o := range objects {
		if strings.HasSuffix(o.Key, artifact.ManifestSuffix) {
			manifests[strings.TrimSuffix(o.Key, artifact.ManifestSuffix)] = true
		}
	}
	var out []target.Object
	for _, o := range objects {
		if !strings.HasSuffix(o.Key, artifact.ManifestSuffix) && !manifests[o.Key] && !strings.HasPrefix(o.Key, "_catalog/") && !strings.Contains(o.Key, "/_catalog/") {
			out = append(out, o)
		}
	}
	return out
}
