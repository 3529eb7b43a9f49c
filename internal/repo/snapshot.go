package repo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/snapshot"
)

// Snapshot is one backup in the repository.
type Snapshot = snapshot.Snapshot

// Totals count what a backup did.
type Totals = snapshot.Totals

// ErrRefused is wrapped when a snapshot is not signed by a trusted key (or damaged).
var ErrRefused = snapshot.ErrRefused

func (r *Repo) encodeSnapshot(s *Snapshot) ([]byte, error) {
	if r.a.Signer == nil {
		return nil, fmt.Errorf("repository %s: no signing key to sign the snapshot with", r.cfg.ID)
	}
	return snapshot.Encode(r.keys, r.a.Signer, s)
}

func (r *Repo) decodeSnapshot(id string, stored []byte) (*Snapshot, error) {
	s, err := snapshot.Decode(r.keys, r.a.Trust, id, stored)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s in repository %s: %w", id, r.cfg.ID, err)
	}
	return s, nil
}

// LoadSnapshot reads and verifies one snapshot; id may be a unique prefix of its ID.
func (r *Repo) LoadSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	if len(id) < 64 {
		ids, err := r.SnapshotIDs(ctx)
		if err != nil {
			return nil, err
		}
		var match []string
		for _, s := range ids {
			if strings.HasPrefix(s, id) {
				match = append(match, s)
			}
		}
		if len(match) > 1 {
			// Objects that are not snapshots (put by someone else) do not make it ambiguous.
			var ok []*Snapshot
			for _, m := range match {
				if s, err := r.LoadSnapshot(ctx, m); err == nil {
					ok = append(ok, s)
				}
			}
			if len(ok) == 1 {
				return ok[0], nil
			}
		}
		if len(match) != 1 {
			return nil, fmt.Errorf("repository %s: %d snapshots have IDs starting with %q (want exactly one)", r.cfg.ID, len(match), id)
		}
		id = match[0]
	}
	b, err := r.obj.Get(ctx, "snapshots/"+id, snapshot.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return r.decodeSnapshot(id, b)
}

// SnapshotIDs lists the snapshots' IDs (unverified; names that are not IDs are passed over).
func (r *Repo) SnapshotIDs(ctx context.Context) ([]string, error) {
	var ids []string
	for o, err := range r.t.List(ctx, "snapshots/") {
		if err != nil {
			return nil, fmt.Errorf("listing snapshots in %s: %w", r.t, err)
		}
		id := path.Base(o.Key)
		if _, err := blob.ParseID(id); err != nil {
			continue // not a snapshot's name (the hash of its bytes): nothing this repository wrote
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Snapshots loads every snapshot, oldest first. Snapshots that cannot be verified are left
// out and reported in the error (which is then an errors.Join of each); the rest are returned.
func (r *Repo) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	var bad []error
	for _, id := range ids {
		s, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		out = append(out, s)
	}
	// One backup is counted once: copies of a snapshot (the same signed bytes stored again
	// under another name: only an unencrypted repository's can be made without the key) would
	// make a retention keep them instead of other backups. The smallest ID stands for them.
	slices.SortFunc(out, func(a, b *Snapshot) int { return strings.Compare(a.ID, b.ID) })
	seen := map[blob.ID]bool{}
	out = slices.DeleteFunc(out, func(s *Snapshot) bool {
		dup := seen[s.Signed]
		seen[s.Signed] = true
		return dup
	})
	slices.SortStableFunc(out, func(a, b *Snapshot) int { return a.Time.Compare(b.Time) })
	return out, errors.Join(bad...)
}

// Forget deletes snapshots (their data goes at the next Prune).
func (r *Repo) Forget(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		if _, err := blob.ParseID(id); err != nil {
			return fmt.Errorf("forget: snapshot %w", err)
		}
		if err := r.t.Delete(ctx, "snapshots/"+id); err != nil {
			return fmt.Errorf("forgetting snapshot %s in %s: %w", id, r.t, err)
		}
	}
	return nil
}
