//go:build linux

package extract

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-backup/docker-backup/internal/mountpath"
)

// TestSweepSparesLiveStaging: the sweep at a restore's start removes a staging directory no
// one holds (a power cut's leftover) and keeps one a live restore holds locked (another
// service's restore into the same volume).
func TestSweepSparesLiveStaging(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, mountpath.StagingPrefix+"00000000dead")
	live := filepath.Join(dir, mountpath.StagingPrefix+"00000000a11e")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sub/f"), []byte("staged"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := lockStaging(live)
	if err != nil {
		t.Fatal(err)
	}
	SweepStaging([]string{dir})
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the leftover staging directory was not swept: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(live, "sub/f")); err != nil || string(b) != "staged" {
		t.Errorf("the live restore's staging directory was touched: %q, %v", b, err)
	}
	lock.Close()
	SweepStaging([]string{dir})
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("the staging directory, no longer held, was not swept: %v", err)
	}
}
