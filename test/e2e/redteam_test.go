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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// bombTar streams a volume archive of /data into w: a file of fill bytes 'A' (they take room:
// not a hole), then a file of zeros bytes (holes: no room, but time to unpack).
func bombTar(t *testing.T, w *tar.Writer, fill, zeros int64) {
	t.Helper()
	w.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755})
	w.WriteHeader(&tar.Header{Name: "data/aaa-fill", Typeflag: tar.TypeReg, Mode: 0o644, Size: fill})
	a := bytes.Repeat([]byte("A"), 1<<20)
	for n := fill; n > 0; n -= int64(len(a)) {
		w.Write(a[:min(n, int64(len(a)))])
	}
	w.WriteHeader(&tar.Header{Name: "data/zzz-zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: zeros})
	z := make([]byte, 1<<20)
	for n := zeros; n > 0; n -= int64(len(z)) {
		w.Write(z[:min(n, int64(len(z)))])
	}
	w.Close()
}

// TestRedTeamStagedRestoreFillsTheLiveVolume — promise 3 ("Volume restores through the
// worker ... unpacked beside the data while the artifact is verified ... a cut before leaves
// the volume and the service as they were") and promise 5 ("a damaged ... or replaced
// artifact ... is refused before anything is touched (a staged volume restore has by then
// written only into its own staging directory, which it removes)").
//
// A staged restore unpacks bytes that are not verified yet (the whole SHA-256 is checked at
// the end, no chunk list is used) into a staging directory inside the live volume, and
// nothing bounds what it unpacks by the signed raw_size (the room check uses it, the
// unpacking does not). Whoever can write the target replaces a signed backup's 3 MB artifact
// with a zstd stream of the same size that unpacks to a file filling the volume and then
// gigabytes of zeros (holes, but minutes of unpacking): while the restore "verifies", the
// running service's volume has no room left. On a named volume on the host's disk this fills
// /var/lib/docker's file system (every container, the engine itself). The restore is refused
// in the end (checksum), but the service was starved meanwhile.
func TestRedTeamStagedRestoreFillsTheLiveVolume(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.name + "_small"
	docker(t, "volume", "create", "--label", "com.docker.compose.project="+p.name,
		"--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=64m", vol)
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	sh := func(script string) string { return docker(t, "exec", filler, "sh", "-c", script) }
	sh("head -c 3000000 /dev/urandom > /data/random.bin && echo hi > /data/small.txt")
	dir := t.TempDir()
	backup(t, "run", "files", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	before := sh(`cd /data && find . -type f | LC_ALL=C sort | xargs sha256sum`)

	// The service can write 1 MB now.
	probe := `head -c 1048576 /dev/urandom > /data/probe 2>/dev/null && echo ok || echo ENOSPC; rm -f /data/probe`
	if got := strings.TrimSpace(sh(probe)); got != "ok" {
		t.Fatalf("the service cannot write 1 MB before the restore: %s", got)
	}
	var avail int64
	fmt.Sscan(sh(`df -B1 --output=avail /data | tail -1`), &avail)

	// The forgery: same size as the artifact, unpacks to avail - 512 KiB of data + 8 GiB of zeros.
	art := filepath.Join(dir, filepath.FromSlash(m.Artifact))
	var buf bytes.Buffer
	zw, _ := artifact.Zstd.NewWriter(&buf)
	bombTar(t, tar.NewWriter(zw), avail-512<<10, 8<<30)
	zw.Close()
	if int64(buf.Len())+8 > m.Size {
		t.Fatalf("the bomb is %d bytes, the artifact %d", buf.Len(), m.Size)
	}
	skip := make([]byte, m.Size-int64(buf.Len()))
	binary.LittleEndian.PutUint32(skip[0:], 0x184D2A50)
	binary.LittleEndian.PutUint32(skip[4:], uint32(len(skip)-8))
	if err := os.WriteFile(art, append(buf.Bytes(), skip...), 0o600); err != nil {
		t.Fatal(err)
	}

	// Meanwhile the service keeps writing 1 MB files, as a database writes its log.
	// The loop ends on its own once told to (a kill could leave its last 1 MB file behind).
	docker(t, "exec", "-d", filler, "sh", "-c", `while [ ! -e /tmp/probe.stop ]; do `+probe+`; sleep 0.1; done > /tmp/probe.log; touch /tmp/probe.done`)
	_, stderr, err := dockerCmd(nil, "backup", "restore", m.Artifact, "--from", dir, "--to", "files", "--project", p.name, "--yes")
	sh(`touch /tmp/probe.stop; for i in $(seq 300); do [ -e /tmp/probe.done ] && exit 0; sleep 0.1; done; echo "the probe loop did not end" >&2; exit 1`)
	t.Logf("restore: %v\n%s", err, stderr)
	if err == nil {
		t.Fatal("the forged artifact was restored")
	}
	log := sh(`cat /tmp/probe.log`)
	if n := strings.Count(log, "ENOSPC"); n > 0 {
		t.Errorf("while the restore unpacked bytes that were never verified, the running service could not write 1 MB to its volume %d times (of %d tries)", n, n+strings.Count(log, "ok"))
	}
	if after := sh(`cd /data && find . -type f | LC_ALL=C sort | xargs sha256sum`); after != before {
		t.Errorf("the volume changed:\n%s", diffLines(before, after))
	}
}

// TestRedTeamLsPrintsTerminalEscapesOfForgeries — promise 5 ("Listings flag them"): `docker
// backup ls` prints the fields of every manifest it reads, unsigned ones included, as they
// are: strategy, container and job (free text a forger chooses) and object keys (an S3 key,
// or a file name, may hold ESC). A forger's "\x1b[8m" (conceal) at the end of the strategy
// hides the rest of the row — the NOTE column that says "unsigned" — and OSC sequences reach
// the administrator's terminal (window title, clipboard with OSC 52 in terminals that allow
// it). The warnings about orphans print keys raw as well.
func TestRedTeamLsPrintsTerminalEscapesOfForgeries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "shop/db/db-postgres-20261201T000000.000Z-00000001.sql.zst"
	os.MkdirAll(filepath.Join(dir, "shop/db"), 0o700)
	os.WriteFile(filepath.Join(dir, key), []byte("data"), 0o600)
	m := map[string]any{"format_version": 2, "artifact": key, "strategy": "postgres\x1b]52;c;cm0gLXJmIH4K\x07\x1b[8m", "project": "shop", "service": "db",
		"container": "shop-db-1", "created_at": "2026-12-01T00:00:00Z", "size": 4, "raw_size": 4,
		"sha256": strings.Repeat("ab", 32), "compression": "zstd"}
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, artifact.ManifestKey(key)), b, 0o600)
	// An orphan whose name holds an escape, old enough to be reported.
	orphan := filepath.Join(dir, "shop/db/x\x1b[2Jy")
	os.WriteFile(orphan, []byte("x"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(orphan, old, old)

	out, stderr, err := dockerCmd(nil, "backup", "ls", "--from", dir)
	if err != nil {
		t.Fatalf("ls: %v\n%s", err, stderr)
	}
	t.Logf("stdout %q\nstderr %q", out, stderr)
	if strings.Contains(out, "\x1b") {
		t.Errorf("ls printed a forger's terminal escape sequences to stdout (the row's \"unsigned\" note is concealed)")
	}
	if strings.Contains(stderr, "\x1b") {
		t.Errorf("ls printed a forger's terminal escape sequences in its warnings")
	}
}

// TestRedTeamLatestFallsBackToAnotherProject — promise 5 ("Which backups are a service's, and
// which may be used, is one rule (internal/selection) for restore, verify, ls, retention and
// the sidecar") and promise 6 ("a manifest that claims another service than its place ... are
// refused"). `docker backup restore latest --from DIR` into shop/files, on a target that holds
// no backup of shop/files (or from which whoever can write it deleted them), takes the newest
// backup of a service named "files" of ANY project — here another project's — and restores
// it over shop's data with a warning only. The sidecar refuses the same (SameService).
func TestRedTeamLatestFallsBackToAnotherProject(t *testing.T) {
	t.Parallel()
	blog := newVolumeFixture(t)
	shop := newVolumeFixture(t)
	shop.sh("echo shop-only > /data/shop.txt")
	dir := t.TempDir()
	backup(t, "run", "files", "--project", blog.p.name, "--to", dir)
	shopBefore := shop.tree()
	out, stderr, err := dockerCmd(nil, "backup", "restore", "latest", "--from", dir, "--to", "files", "--project", shop.p.name, "--yes")
	t.Logf("restore latest into %s/files: %v\n%s\n%s", shop.p.name, err, out, stderr)
	if err == nil {
		t.Errorf("restore latest into %s/files restored a backup of %s/files", shop.p.name, blog.p.name)
	}
	if after := shop.tree(); after != shopBefore {
		t.Errorf("%s's volumes were overwritten with another project's backup:\n%s", shop.p.name, diffLines(shopBefore, after))
	}
}

// TestRedTeamFormat1MySQLRunsForgedSQL — the same as
// TestRedTeamFormat1ArtifactChangedInPlaceIsApplied, through MariaDB (promise 4: "the
// artifact is verified completely before the client starts"): a version-1 backup changed in
// place after pass 1 gets the forger's SQL executed — a database created, a privileged user
// made — before the checksum fails at the end.
func TestRedTeamFormat1MySQLRunsForgedSQL(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startMariaDB(t, p)
	db.sql(mariaFill)
	dir := t.TempDir()
	faultPlugin(t)
	if _, stderr, err := faultCmdEnv(t, nil, "run", "db", "--project", p.name, "--to", dir); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	ms := faultBackups(t, dir)
	if len(ms) != 1 {
		t.Fatalf("want one backup, got %d", len(ms))
	}
	m := ms[0]
	art := filepath.Join(dir, filepath.FromSlash(m.Artifact))
	asFormat1(t, art+artifact.ManifestSuffix, filepath.Join(faultConfig, "docker-backup", "signing.key"))
	os.Remove(art + artifact.ChunksSuffix)
	evil := "CREATE DATABASE pwned;\nCREATE USER 'intruder'@'%' IDENTIFIED BY 'x';\nGRANT ALL PRIVILEGES ON *.* TO 'intruder'@'%' WITH GRANT OPTION;\n"
	forged := zstdPadded(t, []byte(evil+strings.Repeat("-- padding so that the statements reach the server\n", 20000)), m.Size)

	release := filepath.Join(t.TempDir(), "release")
	proc := startFaultEnv(t, []string{"DOCKER_BACKUP_FAULT_RELEASE=" + release}, "restore-verified",
		"restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	proc.waitPoint("restore-verified")
	fh, err := os.OpenFile(art, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt(forged, 0)
	fh.Close()
	os.WriteFile(release, nil, 0o600)
	code := proc.wait()
	t.Logf("restore exit %d:\n%s", code, proc.err.String())
	if code == 0 {
		t.Errorf("the restore of a changed artifact succeeded")
	}
	if got := db.sql(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'pwned'`); got != "0" {
		t.Errorf("SQL no key signed ran: database pwned exists")
	}
	if got := db.sql(`SELECT count(*) FROM mysql.user WHERE user = 'intruder'`); got != "0" {
		t.Errorf("SQL no key signed ran: a user 'intruder' with ALL PRIVILEGES exists")
	}
}

// TestRedTeamRestoreByPathReadsTheManifestUnchecked — promise 12 ("a directory target reads
// only regular files (a named pipe at a key is refused at once, naming the key)") and the
// format's "A manifest is at most 2 MiB; a bigger one is refused". `docker backup restore
// DIR/KEY.manifest.json` (a backup named by its path, without --from) reads the manifest with
// os.ReadFile before any of the target's checks: a named pipe put there hangs the restore for
// ever, and a sparse file of many GiB is read whole into memory (ReadFile allocates its size).
func TestRedTeamRestoreByPathReadsTheManifestUnchecked(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir)
	m := onlyBackup(t, dir)
	mf := filepath.Join(dir, filepath.FromSlash(m.Artifact)) + artifact.ManifestSuffix
	os.Remove(mf)
	if err := syscall.Mkfifo(mf, 0o600); err != nil {
		t.Fatal(err)
	}
	// The plugin binary itself (not through the docker CLI), so that a kill ends it.
	cmd := exec.Command(pluginBinary, "backup", "restore", mf, "--to", "files", "--project", f.p.name, "--yes")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	cmd.WaitDelay = 5 * time.Second
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("restore by path of a named pipe: %v\n%s", err, stderr.String())
		if !strings.Contains(stderr.String(), "named pipe") {
			t.Errorf("the named pipe is not named as such")
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("restore by the path of a manifest that is a named pipe hangs (killed after 20 s):\n%s", stderr.String())
	}
}
