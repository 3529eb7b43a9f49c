package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Snapshot is one backup in the repository.
type Snapshot struct {
	ID       string    `json:"-"` // SHA-256 of the stored object, its key's last part
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Project  string    `json:"project"`
	Service  string    `json:"service"`
	Strategy string    `json:"strategy"`
	Paths    []string  `json:"paths,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Parent   string    `json:"parent,omitempty"`
	Tree     blob.ID   `json:"tree"`
	Totals   Totals    `json:"totals"`
	KeyID    string    `json:"-"` // the key that signed it
}

// Totals count what a backup did.
type Totals struct {
	Files       int64 `json:"files"`
	Dirs        int64 `json:"dirs"`
	Bytes       int64 `json:"bytes"`        // of file content
	ReusedFiles int64 `json:"reused_files"` // taken from the parent without reading
	NewBlobs    int64 `json:"new_blobs"`
	NewRaw      int64 `json:"new_raw"`    // plaintext bytes of new blobs
	NewStored   int64 `json:"new_stored"` // stored bytes of new blobs
	Packs       int64 `json:"packs"`
}

type envelope struct {
	Version   int                 `json:"version"`
	Snapshot  json.RawMessage     `json:"snapshot"`
	Signature *artifact.Signature `json:"signature"`
}

// snapshotPurpose is what a snapshot's signature is for (see artifact.SigningKey.SignBytes).
const snapshotPurpose = "repository snapshot v1"

const maxSnapshot = 16 << 20

// ErrRefused is wrapped when a snapshot is not signed by a trusted key.
var ErrRefused = errors.New("snapshot refused")

func (r *Repo) encodeSnapshot(s *Snapshot) ([]byte, error) {
	if r.a.Signer == nil {
		return nil, fmt.Errorf("repository %s: no signing key to sign the snapshot with", r.cfg.ID)
	}
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(envelope{Version: 1, Snapshot: body, Signature: r.a.Signer.SignBytes(snapshotPurpose, body)})
	if err != nil {
		return nil, err
	}
	return r.keys.Seal(r.keys.Compress(env))
}

func (r *Repo) decodeSnapshot(id string, stored []byte) (*Snapshot, error) {
	where := fmt.Sprintf("snapshot %s in repository %s", id, r.cfg.ID)
	if blob.Sum(stored).String() != id {
		return nil, fmt.Errorf("%s: its content does not hash to its name (damaged or tampered with): %w", where, ErrRefused)
	}
	plain, err := r.keys.Unseal(stored)
	if err == nil {
		plain, err = r.keys.Decompress(plain, maxSnapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, err, ErrRefused)
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || env.Version != 1 {
		return nil, fmt.Errorf("%s: not a version 1 snapshot: %w", where, ErrRefused)
	}
	if err := r.a.Trust.VerifyBytes(snapshotPurpose, env.Snapshot, env.Signature); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, err, ErrRefused)
	}
	var s Snapshot
	if err := json.Unmarshal(env.Snapshot, &s); err != nil {
		return nil, fmt.Errorf("%s: decoding: %w", where, err)
	}
	s.ID, s.KeyID = id, env.Signature.KeyID
	return &s, nil
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
		if len(match) != 1 {
			return nil, fmt.Errorf("repository %s: %d snapshots have IDs starting with %q (want exactly one)", r.cfg.ID, len(match), id)
		}
		id = match[0]
	}
	b, err := r.get(ctx, "snapshots/"+id, maxSnapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return r.decodeSnapshot(id, b)
}

// SnapshotIDs lists the snapshots' IDs (unverified).
func (r *Repo) SnapshotIDs(ctx context.Context) ([]string, error) {
	var ids []string
	for o, err := range r.t.List(ctx, "snapshots/") {
		if err != nil {
			return nil, fmt.Errorf("listing snapshots in %s: %w", r.t, err)
		}
		ids = append(ids, path.Base(o.Key))
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
	slices.SortFunc(out, func(a, b *Snapshot) int { return a.Time.Compare(b.Time) })
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
