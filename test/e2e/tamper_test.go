package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTamperedArtifactsAreRefused(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir)
	m := onlyBackup(t, dir)
	art := filepath.Join(dir, filepath.FromSlash(m.Artifact))
	good, err := os.ReadFile(art)
	if err != nil {
		t.Fatal(err)
	}
	goodManifest, _ := os.ReadFile(art + ".manifest.json")

	// After the backup the data changes: a restore that went ahead would be visible.
	f.sh(changeScript)
	changed := f.tree()
	startedAt := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app)

	cases := []struct {
		name   string
		tamper func()
		want   []string
	}{
		{"flipped byte", func() {
			bad := append([]byte(nil), good...)
			bad[len(bad)/2] ^= 0x01
			os.WriteFile(art, bad, 0o600)
		}, []string{"does not match its checksum in the signed manifest", "tampered", "untouched"}},
		{"truncated", func() {
			os.WriteFile(art, good[:len(good)/2], 0o600)
		}, []string{"truncated", "untouched"}},
		{"manifest lies about the sha", func() {
			other := sha256.Sum256([]byte("something else"))
			os.WriteFile(art+".manifest.json", []byte(strings.Replace(string(goodManifest), m.SHA256, hex.EncodeToString(other[:]), 1)), 0o600)
		}, []string{"sha256", "untouched"}},
		{"artifact missing", func() {
			os.Remove(art)
		}, []string{"does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(art, good, 0o600)
			os.WriteFile(art+".manifest.json", goodManifest, 0o600)
			tc.tamper()
			stderr := backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
			mustContain(t, stderr, tc.want...)
			if after := f.tree(); after != changed {
				t.Errorf("the refused restore changed the data:\n%s", diffLines(changed, after))
			}
			if now := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app); now != startedAt || !running(t, f.app) {
				t.Errorf("the container was stopped or restarted by a refused restore")
			}
		})
	}

	// With the genuine files back, the same restore goes through.
	os.WriteFile(art, good, 0o600)
	os.WriteFile(art+".manifest.json", goodManifest, 0o600)
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	if f.tree() == changed {
		t.Error("the genuine artifact did not restore")
	}
}
