package snapshots

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Retained is what Retain did.
type Retained struct {
	// Forgotten are the keys of the snapshots forgotten (as a full backup's retention names
	// what it deleted).
	Forgotten []string
	Pruned    *repo.PruneResult
	// Deferred: the prune did not run because a backup or check holds the repository (their
	// data goes at the next retention's prune).
	Deferred bool
}

// NewestIn is the manifest (snapshots.Manifest) of the newest snapshot of service and job in
// the repository of target t; an error when there is none.
func NewestIn(ctx context.Context, t target.Target, keys Keys, a repo.Access, service, job string) (*artifact.Manifest, error) {
	r, err := Open(ctx, t, keys, a)
	if err != nil {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx)
	if s := Newest(snaps, service, job); s != nil {
		return Manifest(s), nil
	}
	return nil, errors.Join(fmt.Errorf("no snapshot of %s (job %s) in repository %s", service, job, r.ID()), err)
}

// RetainIn is Retain on the repository of target t (never nil: an empty Retained on failure).
func RetainIn(ctx context.Context, t target.Target, keys Keys, a repo.Access, service, job string, policy retention.Policy, clock retention.Clock, keep string) (*Retained, error) {
	r, err := Open(ctx, t, keys, a)
	if err != nil {
		return &Retained{}, err
	}
	res, err := Retain(ctx, r, service, job, policy, clock, keep)
	if res == nil {
		res = &Retained{}
	}
	if a.Log != nil && len(res.Forgotten) > 0 {
		a.Log.Info("retention forgot snapshots", "snapshots", strings.Join(res.Forgotten, ", "), "retention", policy.String())
	}
	if a.Log != nil && res.Deferred {
		a.Log.Info("the repository's prune waits for the next retention: a backup or check holds it")
	}
	return res, err
}

// Retain applies policy to the snapshots of service ("project/service") and job in r, keeping
// keep (the key of the snapshot just written), forgets the others the policy does not keep,
// then prunes the repository (under its exclusive lock: not beside a running backup).
// Snapshots that cannot be verified are never counted nor forgotten, and stop the prune
// (what they reference is unknown).
func Retain(ctx context.Context, r *repo.Repo, service, job string, policy retention.Policy, clock retention.Clock, keep string) (*Retained, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil, fmt.Errorf("retention: listing the snapshots of repository %s: %w (nothing was forgotten)", r.ID(), err)
	}
	var mine []retention.Backup
	for _, s := range snaps {
		if artifact.ServiceName(s.Project, s.Service, s.Container) == service && s.Job == job {
			mine = append(mine, retention.Backup{Key: Key(s.ID), Created: s.Time})
		}
	}
	// Newest first, as retention decides.
	for i, j := 0, len(mine)-1; i < j; i, j = i+1, j-1 {
		mine[i], mine[j] = mine[j], mine[i]
	}
	clock.Keep = keep
	out := &Retained{}
	for _, dec := range retention.Apply(policy, mine, clock) {
		if dec.Keep {
			continue
		}
		id, _ := ParseRef(dec.Key)
		if ferr := r.Forget(ctx, id); ferr != nil {
			return out, ferr
		}
		out.Forgotten = append(out.Forgotten, dec.Key)
	}
	if len(out.Forgotten) == 0 {
		return out, nil
	}
	if out.Pruned, err = r.Prune(ctx); errors.Is(err, repo.ErrLocked) {
		out.Deferred = true
		return out, nil
	} else if err != nil {
		return out, fmt.Errorf("retention forgot %d snapshots, but pruning repository %s failed (the next one finishes): %w", len(out.Forgotten), r.ID(), err)
	}
	return out, nil
}
