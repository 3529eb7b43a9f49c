// Package repo is the incremental repository: content-defined chunks of files and dump
// streams, deduplicated by keyed hash, compressed, optionally encrypted, in packs of a few
// MiB on any target, with an index and signed snapshots. docs/repository-format.md describes
// the objects and the prune protocol.
package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/chunker"
	"github.com/docker-backup/docker-backup/internal/repo/lock"
	"github.com/docker-backup/docker-backup/internal/repo/masterkey"
	"github.com/docker-backup/docker-backup/internal/repo/objects"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Access is what a caller brings to a repository: keys and how to work.
type Access struct {
	// MasterKey opens an encrypted repository (the key file's content, see ParseKeyFile).
	// Writers of an encrypted repository need it; readers may give Identities instead.
	MasterKey []byte
	// Identities unwrap the master key from the config (age identities of a recipient).
	Identities *crypt.Identities
	// Signer signs snapshots: needed to write.
	Signer *artifact.SigningKey
	// Trust verifies snapshots: a snapshot no trusted key signed is refused.
	Trust *artifact.Keyring
	// Host names this host in locks and snapshots (default: os.Hostname).
	Host string
	// PackSize is the target size of a pack (default 8 MiB).
	PackSize int
	// Uploads is how many packs may be uploading at once (default 2).
	Uploads int
	// Compression is the zstd level of new blobs (default "fastest").
	Compression blob.Level
	// Workers compress and encrypt (default GOMAXPROCS).
	Workers int
	// LockWait is how long a backup waits for an exclusive lock (a prune) to go (default 0:
	// it fails at once).
	LockWait time.Duration
	// Hook, when set, is called at named points of backups and prunes (tests pause or fail
	// there); an error it returns aborts the operation as a crash would. It may be called from
	// several goroutines at once.
	Hook func(ctx context.Context, point string) error
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives progress (default: discarded).
	Log *slog.Logger
}

func (a *Access) defaults() {
	if a.Host == "" {
		a.Host, _ = os.Hostname()
	}
	if a.PackSize <= 0 {
		a.PackSize = 8 << 20
	}
	if a.Uploads <= 0 {
		a.Uploads = 2
	}
	if a.Workers <= 0 {
		a.Workers = runtime.GOMAXPROCS(0)
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
}

// Repo is an open repository.
type Repo struct {
	t      target.Target
	obj    objects.Store
	cfg    Config
	keys   *blob.Keys
	master []byte
	table  *chunker.Table
	a      Access
}

// Config is the repository's config object.
type Config struct {
	Version   int            `json:"version"`
	ID        string         `json:"id"`
	Created   time.Time      `json:"created"`
	Encrypted bool           `json:"encrypted"`
	Chunker   chunker.Params `json:"chunker"` // its seed is omitted (derived from the master key) when encrypted
	// ChunkIDKey is the HMAC key of blob IDs in an unencrypted repository.
	ChunkIDKey []byte `json:"chunk_id_key,omitempty"`
	// MasterKey is the master key encrypted with age for Recipients (armored).
	MasterKey  string   `json:"master_key_age,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	// KeyCheck proves a master key is this repository's: hex HMAC-SHA256 under a key derived from it.
	KeyCheck string `json:"key_check,omitempty"`
}

const (
	configKey     = "config"
	formatVersion = 1
	maxConfig     = 1 << 20
)

// ID is the repository's ID.
func (r *Repo) ID() string { return r.cfg.ID }

// Config returns the repository's config.
func (r *Repo) Config() Config { return r.cfg }

// Target is where the repository is.
func (r *Repo) Target() target.Target { return r.t }

// Encrypted reports whether the repository is.
func (r *Repo) Encrypted() bool { return r.cfg.Encrypted }

// MasterKey returns an encrypted repository's master key, to be kept in a key file (see
// KeyFile); nil for an unencrypted one.
func (r *Repo) MasterKey() []byte { return bytes.Clone(r.master) }

func (r *Repo) hook(ctx context.Context, point string) error {
	if r.a.Hook == nil {
		return nil
	}
	if err := r.a.Hook(ctx, point); err != nil {
		return fmt.Errorf("stopped at %s: %w", point, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// KeyFile is the text of a key file holding an encrypted repository's master key ("" for an
// unencrypted one): the sidecar keeps it in its state directory (0600); other hosts that write
// the repository are given it as a secret (Access.MasterKey, from ParseKeyFile).
func (r *Repo) KeyFile() string {
	if r.master == nil {
		return ""
	}
	return masterkey.File(r.cfg.ID, r.master)
}

// ParseKeyFile reads a key file's text: the repository ID (for messages) and the master key.
func ParseKeyFile(text string) (repoID string, master []byte, err error) {
	return masterkey.ParseFile(text)
}

func decodeConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding the repository config: %w", err)
	}
	if c.Version != formatVersion {
		return c, fmt.Errorf("repository format version %d is not %d (made by a newer version of docker-backup?)", c.Version, formatVersion)
	}
	return c, nil
}

// ErrLocked is wrapped when another operation holds a conflicting lock: a prune refuses to
// run beside a backup, a backup beside a prune.
var ErrLocked = lock.ErrLocked

func (r *Repo) locker() *lock.Locker {
	return &lock.Locker{T: r.t, Name: fmt.Sprintf("repository %s in %s", r.cfg.ID, r.t), Host: r.a.Host,
		Wait: r.a.LockWait, Now: r.a.Now, Log: r.a.Log, Hook: r.a.Hook}
}

// Locks lists the repository's locks.
func (r *Repo) Locks(ctx context.Context) ([]lock.Info, error) { return r.locker().List(ctx) }

// RemoveStaleLocks deletes locks left by crashed operations (all: every lock, when the
// operator knows nothing runs).
func (r *Repo) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	return r.locker().RemoveStale(ctx, all)
}
