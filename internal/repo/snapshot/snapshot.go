// Package snapshot encodes a repository's snapshots: what was backed up, when, from where,
// and its root tree, signed with the same Ed25519 key as artifact manifests.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
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
	// Job names the sidecar job ("" for a backup made by hand); Container and Image are the
	// backed-up container's, Source what the strategy recorded (as a manifest's source).
	Job       string            `json:"job,omitempty"`
	Container string            `json:"container,omitempty"`
	Image     string            `json:"image,omitempty"`
	Source    map[string]string `json:"source,omitempty"`
	// Contents is what the backup held, counted as it was made (as a manifest's): verify
	// compares a scratch restore with it.
	Contents *artifact.Contents `json:"contents,omitempty"`
	Paths    []string           `json:"paths,omitempty"`
	Tags     []string           `json:"tags,omitempty"`
	Parent   string             `json:"parent,omitempty"`
	Tree     blob.ID            `json:"tree"`
	Totals   Totals             `json:"totals"`
	KeyID    string             `json:"-"` // the key that signed it
	// Signed is the SHA-256 of the signed bytes: two snapshots with the same are one backup
	// stored twice (an unencrypted snapshot re-encoded by someone else is another object).
	Signed blob.ID `json:"-"`
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

// purpose is what a snapshot's signature is for (see artifact.SigningKey.SignBytes).
const purpose = "repository snapshot v1"

// MaxSize bounds a stored snapshot.
const MaxSize = 16 << 20

// ErrRefused is wrapped when a snapshot is not signed by a trusted key.
var ErrRefused = errors.New("snapshot refused")

// Encode signs the snapshot and returns its stored bytes: JSON {version, snapshot,
// signature}, compressed, sealed when the repository is encrypted.
func Encode(k *blob.Keys, signer *artifact.SigningKey, s *Snapshot) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(envelope{Version: 1, Snapshot: body, Signature: signer.SignBytes(purpose, body)})
	if err != nil {
		return nil, err
	}
	return k.Seal(k.Compress(env))
}

// Decode reads a stored snapshot named id: its name must be its hash, and a trusted key
// must have signed it.
func Decode(k *blob.Keys, trust *artifact.Keyring, id string, stored []byte) (*Snapshot, error) {
	if blob.Sum(stored).String() != id {
		return nil, fmt.Errorf("its content does not hash to its name (damaged or tampered with): %w", ErrRefused)
	}
	plain, err := k.Unseal(stored)
	if err == nil {
		plain, err = k.Decompress(plain, MaxSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrRefused)
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || env.Version != 1 {
		return nil, fmt.Errorf("not a version 1 snapshot: %w", ErrRefused)
	}
	if err := trust.VerifyBytes(purpose, env.Snapshot, env.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrRefused)
	}
	var s Snapshot
	if err := json.Unmarshal(env.Snapshot, &s); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	s.ID, s.KeyID, s.Signed = id, env.Signature.KeyID, blob.Sum(env.Snapshot)
	return &s, nil
}
