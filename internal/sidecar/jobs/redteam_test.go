package jobs

// Red-team reproductions (branch redteam): a failing test is a finding.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/sidecar/catalogcopy"

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
	signer, _ := artifact.NewSigningKey([]byte("the sidecar's key, which the forger cannot read"))
	d := New(ctx, Options{Catalog: cat, Targets: map[string]target.Target{"default": tgt}, Project: "shop", StateDir: t.TempDir(), Signer: signer, Log: slog.New(slog.DiscardHandler)})
	if err := d.BackupCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		// Old names, and the new form with a tag the forger cannot compute.
		for _, name := range []string{"catalog-9999010" + string(rune('0'+i)) + "T000000.000Z.db", "catalog-9999010" + string(rune('0'+i)) + "T000000.000Z-0123456789abcdef.db"} {
			os.WriteFile(filepath.Join(dir, "_catalog/shop", name), []byte("forged"), 0o600)
		}
	}
	for range 9 {
		time.Sleep(2 * time.Millisecond) // a copy's name is its millisecond
		if err := d.BackupCatalog(ctx); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "_catalog/shop"))
	real, forged := 0, 0
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(dir, "_catalog/shop", e.Name())); string(b) != "forged" {
			real++
		} else {
			forged++
		}
	}
	if real != catalogcopy.Keep || forged != 14 {
		t.Errorf("%d real catalog copies (want the newest %d) and %d forged objects (want all 14, left alone)", real, catalogcopy.Keep, forged)
	}
}
