package jobs

// Red-team reproductions (branch redteam): a failing test is a finding.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/target"
)

// TestRedTeamForgedCatalogCopiesPushOutTheRealOnes — promise 7 ("whoever can only add objects
// to the target (put-only credentials, a shared prefix, a second host) cannot make it delete
// the real ones"). BackupCatalog keeps the 7 keys under _catalog/SCOPE/ that sort last by
// name. Seven objects named catalog-9…, added by anyone who can put objects, sort after every
// real copy: the sidecar deletes its own catalog copies — even the one it has just written —
// and keeps the forger's.
func TestRedTeamForgedCatalogCopiesPushOutTheRealOnes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tgt, _ := target.NewLocal(dir)
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	d := New(ctx, Options{Catalog: cat, Targets: map[string]target.Target{"default": tgt}, Project: "shop", StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err := d.BackupCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		key := filepath.Join(dir, "_catalog/shop", "catalog-9999010"+string(rune('0'+i))+"T000000.000Z.db")
		os.WriteFile(key, []byte("forged"), 0o600)
	}
	if err := d.BackupCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "_catalog/shop"))
	real := 0
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(dir, "_catalog/shop", e.Name())); string(b) != "forged" {
			real++
		}
	}
	if real == 0 {
		t.Errorf("every real catalog copy was deleted (the one just written too); the target keeps the %d forged ones", len(entries))
	}
}
