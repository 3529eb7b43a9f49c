package e2e

// Red-team reproductions (branch redteam): each test is an attack by whoever can write the
// backup target, or a crash, against a promise of docs/guarantees.md. A failing test is a
// finding. Run: E2E_IMAGE_TAG=redteam go test -count=1 -run 'TestRedTeam.*' ./test/e2e

import (
	"archive/tar"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// asFormat1 rewrites the manifest at path as a version-1 manifest, as versions before the
// chunk list wrote them: no "chunks", signed with HMAC-SHA256 under the key file's secret
// (docs/artifact-format.md, "The signature"). Such backups keep restoring wherever the key file
// that made them is.
func asFormat1(t *testing.T, path, keyFile string) {
	t.Helper()
	secretFile, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.TrimSpace(secretFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	delete(m, "signature")
	delete(m, "chunks")
	m["format_version"] = json.Number("1")
	canonical, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(append([]byte("docker-backup manifest v1\x00"), canonical...))
	id := sha256.Sum256(append([]byte("docker-backup signing key id\x00"), secret...))
	m["signature"] = map[string]any{"scheme": "hmac-sha256", "key_id": hex.EncodeToString(id[:8]), "value": hex.EncodeToString(mac.Sum(nil))}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// zstdPadded compresses raw and pads it with a zstd skippable frame to exactly size bytes: a
// forger's replacement that keeps the artifact's size.
func zstdPadded(t *testing.T, raw []byte, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := artifact.Zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	w.Close()
	pad := int(size) - buf.Len()
	if pad < 8 {
		t.Fatalf("the forged stream is %d bytes, the artifact %d", buf.Len(), size)
	}
	skip := make([]byte, pad)
	binary.LittleEndian.PutUint32(skip[0:], 0x184D2A50)
	binary.LittleEndian.PutUint32(skip[4:], uint32(pad-8))
	return append(buf.Bytes(), skip...)
}

// plantedTar is a volume archive of /data, in the Engine's order, holding a set-user-ID root
// shell script and, after it, a file of zeros that pushes it through every buffer to the
// Engine before the stream ends.
func plantedTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	script := []byte("#!/bin/sh\nid\n")
	pad := make([]byte, 4<<20)
	for _, e := range []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 999, Gid: 999}, nil},
		{tar.Header{Name: "data/zz-planted", Typeflag: tar.TypeReg, Mode: 0o4755, Size: int64(len(script))}, script},
		{tar.Header{Name: "data/zzz-pad", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(pad))}, pad},
	} {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// TestRedTeamFormat1ArtifactChangedInPlaceIsApplied — promise 5 ("Only verified bytes reach a
// strategy ... bytes changed on the target after verification — even in place, in the same
// open file — are refused before the strategy sees them"; version 1 artifacts "are read from
// the same open file ... and checked to the last byte") and promise 6 ("never a set-user-ID
// file ... from an unsigned backup").
//
// A version-1 backup (HMAC-signed, no chunk list: what every backup made before the chunk
// list is) restored in place (DOCKER_BACKUP_WORKER=off, the Engine's archive API; the worker
// without room to stage behaves the same): the restore verifies the whole file (pass 1), then
// reads it again (pass 2). Whoever can write the backup directory rewrites the same file in
// place between the two — same inode, same size, so the pinned descriptor reads the new
// bytes — with an archive of their own. Pass 2 hands it to the Engine entry by entry; the
// checksum fails only at the end, when the entries are written: a set-user-ID root file that
// no key signed is left in the service's volume (the policy allowed it: the manifest is
// trusted).
func TestRedTeamFormat1ArtifactChangedInPlaceIsApplied(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	env := []string{"DOCKER_BACKUP_WORKER=off"}
	faultPlugin(t)
	if _, stderr, err := faultCmdEnv(t, env, "run", "files", "--project", f.p.name, "--to", dir); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	ms := faultBackups(t, dir)
	if len(ms) != 1 {
		t.Fatalf("want one backup, got %d", len(ms))
	}
	m := ms[0]
	art := filepath.Join(dir, filepath.FromSlash(m.Artifact))
	// Made by a version before the chunk list: format 1, HMAC, no chunk list.
	asFormat1(t, art+artifact.ManifestSuffix, filepath.Join(faultConfig, "docker-backup", "signing.key"))
	os.Remove(art + artifact.ChunksSuffix)
	forged := zstdPadded(t, plantedTar(t), m.Size)

	release := filepath.Join(t.TempDir(), "release")
	proc := startFaultEnv(t, append(env, "DOCKER_BACKUP_FAULT_RELEASE="+release), "restore-verified",
		"restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	proc.waitPoint("restore-verified")
	// Verified: now the same file is rewritten in place (no new inode, no new size).
	fh, err := os.OpenFile(art, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(forged, 0); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	os.WriteFile(release, nil, 0o600)
	code := proc.wait()
	t.Logf("restore exit %d:\n%s", code, proc.err.String())
	if code == 0 {
		t.Errorf("the restore of a changed artifact succeeded")
	}
	waitRunning(t, f.app)
	planted := strings.TrimSpace(f.sh("stat -c '%a %u' /data/zz-planted 2>/dev/null || echo absent"))
	if planted != "absent" {
		t.Errorf("bytes no key signed were applied: /data/zz-planted is in the volume, mode and owner %q (a set-user-ID root file)", planted)
	}
}
