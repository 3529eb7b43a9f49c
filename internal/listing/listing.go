// Package listing is what backups a target holds, read from the target alone (no catalog):
// each manifest read and checked against its key (ReadManifest), listed newest first or
// walked holding few at a time, artifacts paired with their manifests, and what interrupted
// backups left removed (Sweep, RemoveUnpublished).
package listing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Listing is what List found under a prefix of a target.
type Listing struct {
	Backups []artifact.Summary // newest first
	// Problems names manifests that could not be read, and artifacts whose manifest lies.
	Problems []string
}

// orphanNotice is how old an artifact without a manifest must be before List reports it: a
// backup writes its manifest right after its artifact.
const orphanNotice = 10 * time.Minute

// listWorkers bounds how many manifests are read at once.
const listWorkers = 8

// List reads the backups under prefix, newest first, each kept as a Summary (whether keys
// trust it included). A target holding artifacts and manifests is all it needs: no catalog,
// no database.
func List(ctx context.Context, t target.Target, prefix string, keys *artifact.Keyring) (*Listing, error) {
	out := &Listing{}
	problems, err := Walk(ctx, t, prefix, keys, func(s artifact.Summary) error {
		out.Backups = append(out.Backups, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Problems = problems
	slices.SortStableFunc(out.Backups, func(a, b artifact.Summary) int {
		if selection.Newer(a, b) {
			return -1
		}
		if selection.Newer(b, a) {
			return 1
		}
		return 0
	})
	return out, nil
}

// Walk reads the backups under prefix and calls fn with each one's Summary, in no particular
// order, as the target lists them: whatever the number of backups, it holds no more than
// listWorkers manifests (each at most artifact.MaxManifestSize) and, as a target lists an
// artifact, its chunk list and its manifest one after the other, a handful of keys. It
// returns the problems it met: manifests that could not be read, manifests whose artifact is
// missing, and artifacts without a manifest older than orphanNotice.
func Walk(ctx context.Context, t target.Target, prefix string, keys *artifact.Keyring, fn func(artifact.Summary) error) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		s   artifact.Summary
		key string
		err error
	}
	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range listWorkers {
		wg.Go(func() {
			for key := range jobs {
				m, err := ReadManifest(ctx, t, key)
				r := result{key: key, err: err}
				if err == nil {
					r.s = artifact.Summarize(m, keys)
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	// The listing feeds the readers; what it yields is matched up as it comes.
	var pairs pairing
	listErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		for o, err := range t.List(ctx, prefix) {
			if err != nil {
				listErr <- err
				return
			}
			if key, ok := pairs.add(o); ok {
				select {
				case jobs <- key:
				case <-ctx.Done():
					listErr <- ctx.Err()
					return
				}
			}
		}
		listErr <- nil
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var problems []string
	var fnErr error
	for r := range results {
		switch {
		case fnErr != nil:
		case r.err != nil:
			problems = append(problems, r.err.Error())
		case !pairs.hasArtifact(r.key):
			// Listed after its manifest, if at all: decided at the end.
			pairs.await(r.s)
		default:
			if fnErr = fn(r.s); fnErr != nil {
				cancel()
			}
		}
	}
	if fnErr != nil {
		return nil, fnErr
	}
	if err := <-listErr; err != nil {
		return nil, err
	}
	for _, s := range pairs.awaited {
		if !pairs.hasArtifact(s.Key) {
			problems = append(problems, fmt.Sprintf("%s: the manifest's artifact is missing", s.Key))
			continue
		}
		if err := fn(s); err != nil {
			return nil, err
		}
	}
	for _, o := range pairs.orphans() {
		if o.ModTime.Before(time.Now().Add(-orphanNotice)) {
			problems = append(problems, fmt.Sprintf("%s: an artifact without its manifest, left by an interrupted backup (it is never restored, and removed by the next run's clean-up after %s)", o.Key, StaleAfter))
		}
	}
	return problems, nil
}

// pairing matches a listing's artifacts (and chunk lists) with their manifests as they are
// listed. A target lists an artifact, its chunk list and its manifest one after the other
// (lexical order), so each is matched at once and nothing stays: only what has no partner
// (yet) is held.
type pairing struct {
	mu sync.Mutex
	// unclaimed are objects that are not manifests and whose manifest was not listed yet.
	unclaimed map[string]target.Object
	// manifests are the artifact keys whose manifest was listed, and whether their artifact
	// was too; an entry goes once the artifact is listed with it.
	manifests map[string]bool
	// claimed counts the artifacts matched (by key), kept only until their manifest's
	// summary is read: hasArtifact asks.
	claimed map[string]bool
	awaited []artifact.Summary
}

// add records a listed object; for a manifest it returns its artifact's key (to be read).
func (p *pairing) add(o target.Object) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unclaimed == nil {
		p.unclaimed, p.manifests, p.claimed = map[string]target.Object{}, map[string]bool{}, map[string]bool{}
	}
	if key, ok := strings.CutSuffix(o.Key, artifact.ManifestSuffix); ok {
		if _, listed := p.unclaimed[key]; listed {
			delete(p.unclaimed, key)
			p.claimed[key] = true
		} else {
			p.manifests[key] = true
		}
		delete(p.unclaimed, artifact.ChunksKey(key))
		return key, true
	}
	if key, ok := strings.CutSuffix(o.Key, artifact.ChunksSuffix); ok && p.manifests[key] {
		return "", false
	}
	if p.manifests[o.Key] {
		delete(p.manifests, o.Key)
		p.claimed[o.Key] = true
		return "", false
	}
	if isCatalog(o.Key) {
		return "", false
	}
	p.unclaimed[o.Key] = o
	return "", false
}

// hasArtifact reports whether the artifact of the manifest at key was listed; once asked, it
// is forgotten (each manifest asks once).
func (p *pairing) hasArtifact(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.claimed[key] {
		delete(p.claimed, key)
		return true
	}
	return false
}

func (p *pairing) await(s artifact.Summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.awaited = append(p.awaited, s)
}

// orphans are the objects that are neither a manifest nor the artifact or chunk list of one.
func (p *pairing) orphans() []target.Object {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []target.Object
	for _, o := range p.unclaimed {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b target.Object) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// RemoveUnpublished removes what a backup that never published its manifest left at key: the
// artifact, its chunk list and the target's unfinished uploads of both.
func RemoveUnpublished(ctx context.Context, t target.Target, key string) error {
	ck := artifact.ChunksKey(key)
	return errors.Join(t.Delete(ctx, key), target.RemoveIncomplete(ctx, t, key), t.Delete(ctx, ck), target.RemoveIncomplete(ctx, t, ck))
}

// exists reports whether the object at key can be opened.
func exists(ctx context.Context, t target.Target, key string) (bool, error) {
	rc, err := t.Get(ctx, key)
	switch {
	case err == nil:
		rc.Close()
		return true, nil
	case errors.Is(err, target.ErrNotExist):
		return false, nil
	}
	return false, err
}

// isCatalog reports whether key is one of the sidecar's catalog backups (never an orphan).
func isCatalog(key string) bool {
	return strings.HasPrefix(key, "_catalog/") || strings.Contains(key, "/_catalog/")
}

// StaleAfter is how old the leftovers of an interrupted backup must be before Sweep removes
// them (and List reports them): a backup still running is younger.
const StaleAfter = 6 * time.Hour

// Sweep removes what interrupted backups left under dir (a service's directory) more than
// StaleAfter ago: artifacts and chunk lists whose manifest was never written (or was deleted
// by an interrupted prune), the target's temporary files or unfinished uploads. Nothing with
// a manifest is touched. It returns what it removed.
func Sweep(ctx context.Context, t target.Target, dir string) ([]string, error) {
	before := time.Now().Add(-StaleAfter)
	removed, err := target.RemoveStale(ctx, t, dir, before)
	if err != nil {
		return removed, err
	}
	var pairs pairing
	for o, err := range t.List(ctx, dir) {
		if err != nil {
			return removed, err
		}
		pairs.add(o)
	}
	for _, o := range pairs.orphans() {
		if !o.ModTime.Before(before) {
			continue
		}
		// A target that lists out of order could make a live backup's part look orphaned:
		// its manifest is looked for before anything is deleted.
		base := strings.TrimSuffix(o.Key, artifact.ChunksSuffix)
		if has, err := exists(ctx, t, artifact.ManifestKey(base)); err != nil || has {
			if err != nil {
				return removed, err
			}
			continue
		}
		if err := t.Delete(ctx, o.Key); err != nil {
			return removed, err
		}
		removed = append(removed, o.Key)
	}
	return removed, nil
}

// ReadManifest loads and validates the manifest of the artifact at key: it must name that
// artifact, and its project and service must be those of the key's directory.
func ReadManifest(ctx context.Context, t target.Target, key string) (*artifact.Manifest, error) {
	rc, err := t.Get(ctx, artifact.ManifestKey(key))
	if err != nil {
		if errors.Is(err, target.ErrNotExist) {
			return nil, fmt.Errorf("no backup %q in %s (its manifest %s is missing): list backups with `docker backup ls --from %s`: %w", key, t, artifact.ManifestKey(key), t, target.ErrNotExist)
		}
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, artifact.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", key, err)
	}
	m, err := artifact.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	switch {
	case m.Artifact == key:
	case strings.HasSuffix(key, "/"+m.Artifact):
		// Read from above the prefix it was written to (s3://bucket instead of
		// s3://bucket/host1): its key here is longer.
		m.Artifact = key
	default:
		return nil, fmt.Errorf("manifest of %s names another artifact (%q): %w", key, m.Artifact, artifact.ErrCorrupt)
	}
	if err := m.CheckKey(key); err != nil {
		return nil, fmt.Errorf("%w: %w", err, artifact.ErrCorrupt)
	}
	return m, nil
}
