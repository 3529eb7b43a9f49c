package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Listing is the result of reading every manifest under a prefix of a target.
type Listing struct {
	Backups []*artifact.Manifest // newest first
	// Problems names manifests that could not be read, and artifacts whose manifest lies.
	Problems []string
}

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
	sort.SliceStable(out.Backups, func(i, j int) bool {
		if !out.Backups[i].CreatedAt.Equal(out.Backups[j].CreatedAt) {
			return out.Backups[i].CreatedAt.After(out.Backups[j].CreatedAt)
		}
		return out.Backups[i].Artifact > out.Backups[j].Artifact
	})
	return out, nil
}
