package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Listing is the result of reading every manifest on a target.
type Listing struct {
	Backups []*artifact.Manifest // newest first
	// Problems names manifests that could not be read, and artifacts whose manifest lies.
	Problems []string
}

// List reads the manifests under prefix, newest first. A target holding artifacts and
// manifests is all it needs: no catalog, no database.
func List(ctx context.Context, t target.Target, prefix string) (*Listing, error) {
	objects, err := t.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	present := map[string]int64{}
	for _, o := range objects {
		present[o.Key] = o.Size
	}
	out := &Listing{}
	for _, o := range objects {
		if !strings.HasSuffix(o.Key, artifact.ManifestSuffix) {
			continue
		}
		key := strings.TrimSuffix(o.Key, artifact.ManifestSuffix)
		m, err := ReadManifest(ctx, t, key)
		if err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		if _, ok := present[key]; !ok {
			out.Problems = append(out.Problems, fmt.Sprintf("%s: the manifest's artifact is missing", key))
			continue
		}
		out.Backups = append(out.Backups, m)
	}
	sort.SliceStable(out.Backups, func(i, j int) bool {
		if !out.Backups[i].CreatedAt.Equal(out.Backups[j].CreatedAt) {
			return out.Backups[i].CreatedAt.After(out.Backups[j].CreatedAt)
		}
		return out.Backups[i].Artifact > out.Backups[j].Artifact
	})
	return out, nil
}
