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
	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/target"
)

// TestRedTeamJunkManifestStallsRecoveryForever — promise 8 ("Recovery finishes its work ...
// removes what was left, and retries what it cannot do yet ... with backoff until done") and
// promise 1 (what an interrupted backup leaves "is removed by the sidecar's recovery at once").
//
// The sidecar is killed while it uploads shop/db/K (a hidden temporary file or an S3
// multipart upload shows K to whoever watches the target). Whoever can write the target then
// puts anything that is not a valid manifest at K.manifest.json: garbage, a manifest over
// 2 MiB, one naming another artifact or another service. settle treats every error of
// ReadManifest other than "does not exist" as the target being unreachable: the task is
// retried every minute forever (docker_backup_recovery_pending stays up), and the run's
// artifact — and the junk — are never removed. A valid but unsigned manifest, by contrast, is
// removed at once (recover.go).
func TestRedTeamJunkManifestStallsRecoveryForever(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tgt, err := target.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := "shop/db/db-default-postgres-20261207T000000.000Z-01234567.sql.zst"
	os.MkdirAll(filepath.Join(dir, "shop/db"), 0o700)
	os.WriteFile(filepath.Join(dir, key), []byte("part of a dump"), 0o600) // what the run left
	for name, junk := range map[string][]byte{
		"garbage":          []byte("not json"),
		"another artifact": []byte(`{"format_version":2,"artifact":"shop/db/other.sql.zst","strategy":"postgres","project":"shop","service":"db","size":1,"sha256":"` + sha64 + `","compression":"zstd"}`),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			cat, err := catalog.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer cat.Close()
			id, _ := cat.UpsertJob(ctx, catalog.Job{Project: "shop", Service: "db", Name: "default", Target: "default"})
			cat.StartRun(ctx, catalog.Run{JobID: id, StartedAt: time.Now(), ArtifactKey: key})
			// killed during the run; meanwhile the forger writes at the run's manifest key
			os.WriteFile(filepath.Join(dir, artifact.ManifestKey(key)), junk, 0o600)
			os.WriteFile(filepath.Join(dir, key), []byte("part of a dump"), 0o600)

			d := New(ctx, Options{Catalog: cat, Targets: map[string]target.Target{"default": tgt}, Keys: artifact.NewKeyring(nil), Log: slog.New(slog.DiscardHandler)})
			if err := d.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			for range 3 { // what KeepRecovering does, every minute at most
				d.recovery.settleAll(ctx, false)
			}
			if p := d.Pending(); len(p) != 0 {
				t.Errorf("recovery never finishes: pending %q", p)
			}
			if _, err := os.Stat(filepath.Join(dir, key)); err == nil {
				t.Errorf("the interrupted run's artifact is never removed")
			}
			if p, _ := cat.PendingCleanups(ctx); len(p) != 0 {
				t.Errorf("still to settle in the catalog: %d", len(p))
			}
		})
	}
}

const sha64 = "0000000000000000000000000000000000000000000000000000000000000000"

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
