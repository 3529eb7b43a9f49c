package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/chunker"
	"github.com/docker-backup/docker-backup/internal/repo/masterkey"
	"github.com/docker-backup/docker-backup/internal/repo/objects"
	"github.com/docker-backup/docker-backup/internal/target"
)

// InitOptions shape a new repository.
type InitOptions struct {
	// Recipients encrypt the repository (nil or empty: unencrypted).
	Recipients *crypt.Recipients
	// ChunkMin, ChunkAvg, ChunkMax are the chunk sizes (defaults 512 KiB, 1 MiB, 8 MiB).
	ChunkMin, ChunkAvg, ChunkMax int
}

// Init creates a repository on t, or opens the one there. Two hosts initialising at once
// agree: the loser's Put of the config fails and it opens the winner's.
func Init(ctx context.Context, t target.Target, opts InitOptions, a Access) (*Repo, error) {
	if rc, err := t.Get(ctx, configKey); err == nil {
		rc.Close()
		return Open(ctx, t, a)
	}
	cfg, master, err := newConfig(opts, a.Now)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := t.Put(ctx, configKey, bytes.NewReader(b)); err != nil {
		if errors.Is(err, target.ErrExist) {
			return Open(ctx, t, a)
		}
		return nil, fmt.Errorf("creating the repository in %s: %w", t, err)
	}
	if master != nil && a.MasterKey == nil {
		a.MasterKey = master
	}
	return open(t, cfg, a)
}

func newConfig(opts InitOptions, now func() time.Time) (Config, []byte, error) {
	if now == nil {
		now = time.Now
	}
	cfg := Config{Version: formatVersion, ID: randomHex(16), Created: now().UTC()}
	cfg.Chunker = chunker.Params{Algorithm: chunker.Algorithm, Min: opts.ChunkMin, Avg: opts.ChunkAvg, Max: opts.ChunkMax}
	if cfg.Chunker.Min == 0 {
		cfg.Chunker.Min, cfg.Chunker.Avg, cfg.Chunker.Max = chunker.DefaultMin, chunker.DefaultAvg, chunker.DefaultMax
	}
	master, err := masterkey.New()
	if err != nil {
		return cfg, nil, err
	}
	if opts.Recipients.Empty() {
		cfg.ChunkIDKey = master
		cfg.Chunker.Seed = []byte(randomHex(16))
		return cfg, nil, cfg.Chunker.Validate()
	}
	cfg.Encrypted = true
	cfg.Recipients = opts.Recipients.Names
	if cfg.MasterKey, err = masterkey.Wrap(master, opts.Recipients); err != nil {
		return cfg, nil, err
	}
	cfg.KeyCheck = masterkey.Check(master)
	return cfg, master, nil
}

// Open opens the repository on t.
func Open(ctx context.Context, t target.Target, a Access) (*Repo, error) {
	rc, err := t.Get(ctx, configKey)
	if err != nil {
		if errors.Is(err, target.ErrNotExist) {
			return nil, fmt.Errorf("no repository in %s (no config): %w", t, err)
		}
		return nil, fmt.Errorf("opening the repository in %s: %w", t, err)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxConfig))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the repository config in %s: %w", t, err)
	}
	cfg, err := decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("repository in %s: %w", t, err)
	}
	return open(t, cfg, a)
}

func open(t target.Target, cfg Config, a Access) (*Repo, error) {
	a.defaults()
	r := &Repo{t: t, cfg: cfg, a: a, obj: objects.Store{T: t, Repo: cfg.ID, Log: a.Log}}
	var err error
	if !cfg.Encrypted {
		r.keys, err = blob.NewPlain(cfg.ChunkIDKey, a.Compression)
	} else {
		if r.master, err = r.unwrap(); err != nil {
			return nil, err
		}
		cfg.Chunker.Seed = blob.Derive(r.master, "chunker-seed")
		r.keys, err = blob.NewEncrypted(r.master, a.Compression)
	}
	if err != nil {
		return nil, fmt.Errorf("repository %s in %s: %w", cfg.ID, t, err)
	}
	if r.table, err = chunker.NewTable(cfg.Chunker); err != nil {
		return nil, fmt.Errorf("repository %s in %s: %w", cfg.ID, t, err)
	}
	return r, nil
}

// unwrap finds the master key: the one given (checked against the config), else the
// config's, decrypted with the identities.
func (r *Repo) unwrap() ([]byte, error) {
	where := fmt.Sprintf("encrypted repository %s in %s", r.cfg.ID, r.t)
	if m := r.a.MasterKey; m != nil {
		if !masterkey.Matches(m, r.cfg.KeyCheck) {
			return nil, fmt.Errorf("%s: the given master key is not its key (a key file of another repository?)", where)
		}
		return m, nil
	}
	if r.a.Identities.Empty() {
		return nil, fmt.Errorf("%s: give its key file (writers) or an identity of %s (restores): %w", where, strings.Join(r.cfg.Recipients, ", "), crypt.ErrNoIdentity)
	}
	m, err := masterkey.Unwrap(r.cfg.MasterKey, r.cfg.Recipients, r.a.Identities, r.cfg.KeyCheck)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return m, nil
}
