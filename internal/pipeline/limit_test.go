package pipeline

import (
	"context"
	crand "crypto/rand"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/target"
)

// remote hides that a directory target is local: a target whose uploads are capped.
type remote struct{ target.Target }

// TestUploadCap: a backup's bytes go to a remote target at the cap (its data, chunk list and
// manifest through one limiter), while a directory target beside it is written at full speed;
// on the bubble's fake clock, so exact whatever the machine's load.
func TestUploadCap(t *testing.T) {
	c, capped, _ := setup(t)
	_, local, _ := setup(t)
	data := make([]byte, 3<<20)
	_, _ = crand.Read(data) // incompressible: the stored size is about the raw size
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		start := time.Now()
		res, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: data}, Compression: artifact.Gzip,
			Targets: []Destination{{Name: "remote", Target: remote{capped}, LimitUpload: 1 << 20}, {Name: "local", Target: local, LimitUpload: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// The first tenth of a second's worth goes at once.
		want := time.Duration(float64(res.Manifest.Size)/float64(1<<20)*float64(time.Second)) - 100*time.Millisecond
		if took < want-50*time.Millisecond || took > want+50*time.Millisecond {
			t.Errorf("%d bytes at 1 MiB/s took %v, want %v", res.Manifest.Size, took, want)
		}
		for _, tg := range []target.Target{capped, local} {
			if m, err := listing.ReadManifest(ctx, tg, res.Key); err != nil || m.SHA256 != res.Manifest.SHA256 {
				t.Errorf("%s: %v", tg, err)
			}
		}
		// A directory target alone: not capped.
		start = time.Now()
		if _, err := Backup(ctx, BackupRequest{Container: c, Key: newKey(), Strategy: &fakeStrategy{data: data}, Compression: artifact.Gzip,
			Targets: []Destination{{Name: "local", Target: local, LimitUpload: 1 << 20}}}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("a directory target's backup took %v on the fake clock: it was capped", took)
		}
	})
	if bandwidth.NewLimiter(0) != nil {
		t.Error("a zero rate caps")
	}
}
