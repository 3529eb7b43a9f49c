package recovery

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

			rc := New(Options{Catalog: cat, Targets: map[string]target.Target{"default": tgt}, Keys: artifact.NewKeyring(nil), Log: slog.New(slog.DiscardHandler)})
			if err := rc.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			for range 3 { // what Keep does, every minute at most
				rc.settleAll(ctx, false)
			}
			if p := rc.Pending(); len(p) != 0 {
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
