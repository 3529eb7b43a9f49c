package repo

// Red-team round 2: signed index files. Each test states the property it expects; on the code
// it was written against it FAILS.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// TestRedteam2ReplayedIndexDedupsAgainstPrunedPack: signing index files stops forged entries,
// not replayed ones. In an ENCRYPTED repository, whoever saw an index file (read) and may Put
// keeps it; once a prune deleted its pack (the snapshot that held the content was forgotten),
// the index file is put back, byte for byte (its name is its hash, its signature is valid).
// The next backup of that content finds its blob IDs in the replayed listing, deduplicates
// against the deleted pack and uploads nothing: the backup reports success, and the snapshot
// does not restore.
func TestRedteam2ReplayedIndexDedupsAgainstPrunedPack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "f"), randomBytes(300<<10, 21))
	r := e.open(nil)
	s1, err := backupDir(ctx, r, src, nil)
	must(t, err)
	saved := map[string][]byte{}
	for _, k := range indexKeys(t, e) {
		b, err := os.ReadFile(filepath.Join(e.repoDir(), k))
		must(t, err)
		saved[k] = b
	}
	// The snapshot expires; its content goes with the prune.
	must(t, r.Forget(ctx, s1.ID))
	if _, err := r.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	replayed := 0
	for k, b := range saved {
		if _, err := os.Stat(filepath.Join(e.repoDir(), k)); err == nil {
			continue
		}
		_, err := e.target.Put(ctx, k, bytes.NewReader(b))
		must(t, err)
		replayed++
	}
	if replayed == 0 {
		t.Fatal("the prune deleted no index file: the scenario proves nothing")
	}
	// The same content comes back (a file restored from elsewhere, a config reverted).
	r = e.open(nil)
	s2, err := backupDir(ctx, r, src, nil)
	if err != nil {
		return // refused: fine
	}
	if _, err := export(ctx, e.open(nil), s2); err != nil {
		t.Errorf("after %d signed index files were put back, a backup reported success but snapshot %s does not restore: %v", replayed, short(s2.ID), err)
	}
}

// TestRedteam2JunkIndexFileBlocksPrune: one object under index/ that no trusted key signed
// (Put only, any bytes named by their hash; or an index file a target without atomic puts
// left truncated by a power cut) stopped every prune until someone deleted it by hand on the
// target: the repository only grew. The prune is safe without it: the junk indexes nothing,
// and a prune refuses when a referenced blob is not indexed in an existing pack (a damaged
// real index file cannot make it delete live data). Now the prune passes over it and
// deletes it with the old index files.
func TestRedteam2JunkIndexFileBlocksPrune(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{false, true} {
		e := newEnv(t, enc)
		src := filepath.Join(e.dir, "src")
		write(t, filepath.Join(src, "f"), randomBytes(10<<10, 3))
		r := e.open(nil)
		s, err := backupDir(ctx, r, src, nil)
		must(t, err)
		junk := []byte("not an index file")
		_, err = e.target.Put(ctx, "index/"+blob.Sum(junk).String(), bytes.NewReader(junk))
		must(t, err)
		if _, err := e.open(nil).Prune(ctx); err != nil {
			t.Errorf("encrypted=%v: one junk object under index/ stops every prune: %v", enc, err)
		}
		if rc, err := e.target.Get(ctx, "index/"+blob.Sum(junk).String()); err == nil {
			rc.Close()
			t.Errorf("encrypted=%v: the prune left the junk index file", enc)
		}
		if _, err := export(ctx, e.open(nil), s); err != nil {
			t.Errorf("encrypted=%v: snapshot %s does not restore: %v", enc, short(s.ID), err)
		}
	}
}
