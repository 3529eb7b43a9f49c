// Package snapshots is a target's repository of incremental backups as the front ends see
// it: where it lives (Dir under the target), its master key's file, the names users write for
// a snapshot, and the raw stream a snapshot restores (what a full backup of it would hold).
package snapshots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Dir is the key prefix of a target's repository (one repository per target prefix).
const Dir = artifact.RepositoryDir

// EnvKeyFile names a repository key file given to this host (a secret): the master key of an
// encrypted repository made elsewhere, needed to write to it.
const EnvKeyFile = "DOCKER_BACKUP_REPOSITORY_KEY_FILE"

// ErrNone is wrapped when a target holds no repository.
var ErrNone = errors.New("no repository")

// Of is the view of t where its repository lives.
func Of(t target.Target) (target.Target, error) { return target.Sub(t, Dir) }

// Keys says where the master keys of encrypted repositories are.
type Keys struct {
	// File is a key file given to this host ($DOCKER_BACKUP_REPOSITORY_KEY_FILE): read, never
	// written.
	File string
	// Dir keeps the key files of repositories made here, one per repository
	// (repository-ID.key, 0600): the sidecar's state directory, the plugin's configuration.
	Dir string
}

// load finds the master key of repository id ("" when none is kept here).
func (k Keys) load(id string) ([]byte, error) {
	files := []string{k.File}
	if k.Dir != "" {
		files = append(files, filepath.Join(k.Dir, "repository-"+id+".key"))
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) && f != k.File {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("repository key file %s: %w", f, err)
		}
		fid, master, err := repo.ParseKeyFile(string(b))
		if err != nil {
			return nil, fmt.Errorf("repository key file %s: %w", f, err)
		}
		if fid == id {
			return master, nil
		}
		if f == k.File {
			return nil, fmt.Errorf("repository key file %s is the key of repository %s, not of %s", f, fid, id)
		}
	}
	return nil, nil
}

// save keeps a new repository's key file in Dir; it returns the file's path.
func (k Keys) save(r *repo.Repo) (string, error) {
	if !r.Encrypted() || k.Dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return "", fmt.Errorf("keeping the key of repository %s: %w", r.ID(), err)
	}
	f := filepath.Join(k.Dir, "repository-"+r.ID()+".key")
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return f, nil
	}
	if err != nil {
		return "", fmt.Errorf("keeping the key of repository %s: %w", r.ID(), err)
	}
	_, err = io.WriteString(fh, r.KeyFile())
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("keeping the key of repository %s in %s: %w", r.ID(), f, err)
	}
	return f, nil
}

// peek reads the repository's ID from its config (ErrNone when there is no config).
func peek(ctx context.Context, t target.Target) (string, error) {
	rc, err := t.Get(ctx, "config")
	if errors.Is(err, target.ErrNotExist) {
		return "", fmt.Errorf("%w in %s", ErrNone, t)
	}
	if err != nil {
		return "", fmt.Errorf("opening the repository in %s: %w", t, err)
	}
	defer rc.Close()
	var cfg struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&cfg); err != nil {
		return "", fmt.Errorf("reading the repository config in %s: %w", t, err)
	}
	return cfg.ID, nil
}

// Open opens the repository of target t (wrapping ErrNone when it has none). The master key of
// an encrypted one comes from keys, else a.Identities unwrap it (enough to read).
func Open(ctx context.Context, t target.Target, keys Keys, a repo.Access) (*repo.Repo, error) {
	sub, err := Of(t)
	if err != nil {
		return nil, err
	}
	id, err := peek(ctx, sub)
	if err != nil {
		return nil, err
	}
	if a.MasterKey == nil {
		if a.MasterKey, err = keys.load(id); err != nil {
			return nil, err
		}
	}
	return repo.Open(ctx, sub, a)
}

// OpenOrInit opens the repository of target t, creating it on first use: encrypted for
// recipients when there are any, its key file then kept in keys.Dir (created says where).
func OpenOrInit(ctx context.Context, t target.Target, recipients *crypt.Recipients, keys Keys, a repo.Access) (r *repo.Repo, created string, err error) {
	r, err = Open(ctx, t, keys, a)
	if !errors.Is(err, ErrNone) {
		return r, "", err
	}
	sub, err := Of(t)
	if err != nil {
		return nil, "", err
	}
	if !recipients.Empty() && keys.Dir == "" {
		return nil, "", fmt.Errorf("an encrypted repository in %s needs a place to keep its key file", t)
	}
	if r, err = repo.Init(ctx, sub, repo.InitOptions{Recipients: recipients}, a); err != nil {
		return nil, "", err
	}
	if r.Encrypted() && r.MasterKey() != nil {
		if created, err = keys.save(r); err != nil {
			return nil, "", err
		}
	}
	return r, created, nil
}

// OpenRef opens the repository of t and the snapshot named ref (snapshot:ID or its key).
func OpenRef(ctx context.Context, t target.Target, ref string, keys Keys, a repo.Access) (*repo.Repo, *repo.Snapshot, error) {
	id, ok := ParseRef(ref)
	if !ok {
		return nil, nil, fmt.Errorf("%q does not name a snapshot (snapshot:ID)", ref)
	}
	r, err := Open(ctx, t, keys, a)
	if err != nil {
		return nil, nil, err
	}
	s, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return r, s, nil
}

// ShortID is how a snapshot is named to people: the first 12 hex digits of its ID.
func ShortID(id string) string { return id[:min(12, len(id))] }

// Prefix starts the name users write for a snapshot: snapshot:SHORTID.
const Prefix = "snapshot:"

// Key is the snapshot's key under the target (as `ls` shows it).
func Key(id string) string { return Dir + "/snapshots/" + id }

// Name is how listings name a snapshot: snapshot:SHORTID.
func Name(id string) string { return Prefix + ShortID(id) }

// IsRef reports whether s names a snapshot (see ParseRef).
func IsRef(s string) bool { _, ok := ParseRef(s); return ok }

// ParseRef reads a snapshot's name (snapshot:ID or a prefix of it, or its key
// _repository/snapshots/ID); ok is false for anything else (a full backup's key).
func ParseRef(s string) (id string, ok bool) {
	if id, ok := strings.CutPrefix(s, Prefix); ok {
		return id, id != ""
	}
	if id, ok := strings.CutPrefix(strings.TrimPrefix(s, "/"), Dir+"/snapshots/"); ok {
		return id, id != ""
	}
	return "", false
}

// ParseShare reads N% (or a fraction 0..1) as a share from 0 to 1.
func ParseShare(s string) (float64, error) {
	v, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(v, 64)
	if err == nil && pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is not a share of the packs: give N%% from 0%% to 100%%", s)
	}
	return f, nil
}
