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
	"github.com/docker-backup/docker-backup/internal/errkind"
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

// maxProblems bounds the problems a listing reports one by one; the rest are counted.
const maxProblems = 50

// problems collects what a listing reports: the first maxProblems, then a count.
type problems struct {
	list []string
	more int
}

func (p *problems) add(s string) {
	if len(p.list) < maxProblems {
		p.list = append(p.list, s)
	} else {
		p.more++
	}
}

func (p *problems) result() []string {
	if p.more > 0 {
		return append(p.list, fmt.Sprintf("and %d more problems like these", p.more))
	}
	return p.list
}

// Walk reads the backups under prefix and calls fn with each one's Summary, in no particular
// order, as the target lists them. Whatever the number of objects, it holds no more than
// listWorkers manifests (each at most artifact.MaxManifestSize) and, since a target lists
// keys in lexical order (an artifact, its chunk list and its manifest one after the other),
// a handful of keys. It returns the problems it met (the first maxProblems, then a count):
// manifests that could not be read, manifests whose artifact is missing, and artifacts
// without a manifest older than orphanNotice.
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
	var probs problems
	var mu sync.Mutex // probs: the lister reports orphans, this goroutine the rest
	report := func(s string) {
		mu.Lock()
		probs.add(s)
		mu.Unlock()
	}
	notice := time.Now().Add(-orphanNotice)
	pairs := pairing{orphan: func(o target.Object) {
		if o.ModTime.Before(notice) {
			report(fmt.Sprintf("%q: an artifact without its manifest, left by an interrupted backup (it is never restored, and removed by the next run's clean-up after %s)", o.Key, StaleAfter))
		}
	}}
	// The listing feeds the readers; what it yields is matched up as it comes.
	listErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		for o, err := range t.List(ctx, prefix) {
			if err != nil {
				listErr <- err
				return
			}
			if strings.HasPrefix(o.Key, artifact.RepositoryDir+"/") {
				continue // the snapshots' repository: listed by package snapshots
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
		pairs.end()
		listErr <- nil
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var fnErr error
	for r := range results {
		switch {
		case fnErr != nil:
		case r.err != nil:
			report(r.err.Error())
		case !pairs.hasArtifact(r.key):
			report(fmt.Sprintf("%q: the manifest's artifact is missing", r.key))
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
	return probs.result(), nil
}

// pairing matches a listing's artifacts and chunk lists with their manifests as they are
// listed. Targets list keys in lexical order, and every key that starts with an artifact's
// key comes right after it (its chunk list, then its manifest): once the listing yields a key
// past all of them, an artifact not matched yet has no manifest to come — an orphan. So only
// keys whose range the listing is still in are held, whatever the number of objects.
type pairing struct {
	mu sync.Mutex
	// open are objects that are not manifests and not matched yet, in the order listed.
	open []target.Object
	// claimed are the artifacts matched with their manifest, until the manifest's summary is
	// read (hasArtifact).
	claimed map[string]bool
	// orphan is told of each object that is neither a manifest nor an artifact or chunk list
	// of one, as soon as the listing has passed it.
	orphan func(target.Object)
}

// add records a listed object; for a manifest it returns its artifact's key (to be read).
func (p *pairing) add(o target.Object) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.claimed == nil {
		p.claimed = map[string]bool{}
	}
	manifestOf, isManifest := strings.CutSuffix(o.Key, artifact.ManifestSuffix)
	if isManifest {
		// Its artifact and chunk list came before it, if at all.
		p.open = slices.DeleteFunc(p.open, func(u target.Object) bool {
			if u.Key == manifestOf {
				p.claimed[manifestOf] = true
				return true
			}
			return u.Key == artifact.ChunksKey(manifestOf)
		})
	}
	p.closePassed(o.Key)
	switch {
	case isManifest:
		return manifestOf, true
	case !isCatalog(o.Key):
		p.open = append(p.open, o)
	}
	return "", false
}

// closePassed reports as orphans the open objects the listing has passed at key: key comes
// after them and does not start with their key (nothing more can match them).
func (p *pairing) closePassed(key string) {
	p.open = slices.DeleteFunc(p.open, func(u target.Object) bool {
		if key > u.Key && !strings.HasPrefix(key, u.Key) {
			p.orphan(u)
			return true
		}
		return false
	})
}

// end reports what is left open as orphans: the listing is over.
func (p *pairing) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.open {
		p.orphan(u)
	}
	p.open = nil
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
	var stale []target.Object // bounded: deleted a batch at a time
	remove := func() error {
		for _, o := range stale {
			// A target that lists out of order could make a live backup's part look
			// orphaned: its manifest is looked for before anything is deleted.
			base := strings.TrimSuffix(o.Key, artifact.ChunksSuffix)
			has, err := exists(ctx, t, artifact.ManifestKey(base))
			if err != nil {
				return err
			}
			if has {
				continue
			}
			if err := t.Delete(ctx, o.Key); err != nil {
				return err
			}
			removed = append(removed, o.Key)
		}
		stale = stale[:0]
		return nil
	}
	pairs := pairing{orphan: func(o target.Object) {
		if o.ModTime.Before(before) {
			stale = append(stale, o)
		}
	}}
	for o, err := range t.List(ctx, dir) {
		if err != nil {
			return removed, err
		}
		pairs.add(o)
		if len(stale) >= 100 {
			if err := remove(); err != nil {
				return removed, err
			}
		}
	}
	pairs.end()
	if err := remove(); err != nil {
		return removed, err
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
		// Not a manifest this tool can read: corrupt (not a matter of reaching the target).
		return nil, fmt.Errorf("manifest of %s: %w%w", key, err, errkind.Silent(artifact.ErrCorrupt))
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
