package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"
)

// incrTarget is where an incremental test writes: a directory or a MinIO bucket.
type incrTarget struct {
	name string
	to   string   // --to / --from
	env  []string // what the plugin needs to reach it
	// damagePack overwrites one byte in the middle of one pack of the repository and returns
	// the pack's ID.
	damagePack func(t *testing.T) string
}

func dirIncrTarget(t *testing.T) incrTarget {
	dir := t.TempDir()
	return incrTarget{name: "dir", to: dir, damagePack: func(t *testing.T) string { return damageDirPack(t, dir) }}
}

// damageDirPack flips a byte in the middle of the first pack of the repository in dir and
// returns the pack's ID.
func damageDirPack(t *testing.T, dir string) string {
	t.Helper()
	var packs []string
	_ = filepath.Walk(filepath.Join(dir, "_repository", "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatalf("no pack under %s/_repository/data", dir)
	}
	slices.Sort(packs)
	b, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(packs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(packs[0])
}

func minioIncrTarget(t *testing.T) incrTarget {
	m := startMinio(t)
	m.bucket("incr")
	return incrTarget{name: "minio", to: m.url("incr/site-a"), env: m.env(), damagePack: func(t *testing.T) string {
		t.Helper()
		var packs []string
		for _, k := range m.objects("incr") {
			if strings.HasPrefix(k, "site-a/_repository/data/") {
				packs = append(packs, k)
			}
		}
		if len(packs) == 0 {
			t.Fatalf("no pack under site-a/_repository/data in the bucket: %v", m.objects("incr"))
		}
		slices.Sort(packs)
		ctx := context.Background()
		obj, err := m.client.GetObject(ctx, "incr", packs[0], minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if _, err := m.client.PutObject(ctx, "incr", packs[0], bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		return filepath.Base(packs[0])
	}}
}

// incrTargets are the kinds of target the incremental tests run on.
var incrTargets = []struct {
	name string
	make func(*testing.T) incrTarget
}{{"dir", dirIncrTarget}, {"minio", minioIncrTarget}}

func (it incrTarget) backup(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := dockerCmd(it.env, append([]string{"backup"}, args...)...)
	if err != nil {
		t.Fatalf("docker backup %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// snapshots lists the target's incremental backups, newest first.
func (it incrTarget) snapshots(t *testing.T) []artifact.Summary {
	t.Helper()
	var listed []artifact.Summary
	if err := json.Unmarshal([]byte(it.backup(t, "ls", "--from", it.to, "--format", "json")), &listed); err != nil {
		t.Fatalf("decoding ls output: %v", err)
	}
	var out []artifact.Summary
	for _, s := range listed {
		if s.Snapshot {
			out = append(out, s)
		}
	}
	return out
}

// incrChangeScript changes the volume fixture between two snapshots: a file appended to, a
// new file, a file deleted, a renamed directory, a mode and an owner changed.
const incrChangeScript = `set -e
head -c 500000 /dev/urandom >> /data/dir/random.bin
head -c 2000000 /dev/urandom > /data/new.bin
rm /data/hardlink.txt
mv /data/dir/sub /data/dir/moved
chmod 0600 /data/hello.txt
chown 7:7 /config/conf.d/app.conf
`

func TestIncrementalVolume(t *testing.T) {
	t.Parallel()
	for _, k := range incrTargets {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			testIncrementalVolume(t, k.make(t))
		})
	}
}

func testIncrementalVolume(t *testing.T, it incrTarget) {
	f := newVolumeFixture(t)
	first := f.tree()
	out := it.backup(t, "run", "files", "--project", f.p.name, "--to", it.to, "--incremental")
	mustContain(t, out, "snapshot:", "incremental")
	f.sh(incrChangeScript)
	second := f.tree()
	if second == first {
		t.Fatal("the changes did not change the tree")
	}
	out = it.backup(t, "run", "files", "--project", f.p.name, "--to", it.to, "--incremental")
	mustContain(t, out, "parent snapshot:")

	snaps := it.snapshots(t)
	if len(snaps) != 2 || snaps[0].Strategy != "volume" || snaps[0].Service != "files" || snaps[0].Project != f.p.name {
		t.Fatalf("ls lists %+v, want two volume snapshots of %s/files", snaps, f.p.name)
	}
	// The second stored only what changed: the appended and the new file, a few trees.
	if snaps[0].Size > 4<<20 || snaps[1].Size < 3<<20 {
		t.Errorf("snapshot sizes (what each added): second %d, first %d; want the second under 4 MiB, the first over 3 MiB", snaps[0].Size, snaps[1].Size)
	}
	table := it.backup(t, "ls", "--from", it.to)
	mustContain(t, table, snaps[0].Key, "incremental")

	// Each restores exactly into emptied volumes (a restore writes over what is there, as a
	// full backup's does: it removes nothing).
	const wipe = "find /data /config -mindepth 1 -delete"
	f.sh(changeScript)
	f.sh(wipe)
	it.backup(t, "restore", snaps[1].Key, "--from", it.to, "--to", "files", "--project", f.p.name, "--yes")
	if got := f.tree(); got != first {
		t.Errorf("the first snapshot restored differs from its source:\n%s", diffLines(first, got))
	}
	f.sh(wipe)
	out = it.backup(t, "restore", "latest", "--from", it.to, "--to", "files", "--project", f.p.name, "--yes")
	mustContain(t, out, "Restored "+snaps[0].Key, "every chunk verified")
	if got := f.tree(); got != second {
		t.Errorf("the second snapshot restored differs from its source:\n%s", diffLines(second, got))
	}
	if !running(t, f.app) {
		t.Error("the app container was not started again after the restore")
	}
	// Export equals a full backup's archive of the same data (read through the Engine's archive API).
	full := t.TempDir()
	if o, stderr, err := dockerCmd(dataPathEnv("off"), "backup", "run", "files", "--project", f.p.name, "--to", full); err != nil {
		t.Fatalf("full backup: %v\n%s\n%s", err, o, stderr)
	}
	m := onlyBackup(t, full)
	exported := filepath.Join(t.TempDir(), "export.tar.zst")
	it.backup(t, "export", snaps[0].Key, "--from", it.to, "-o", exported)
	want, got := archiveEntries(t, filepath.Join(full, m.Artifact)), archiveEntries(t, exported)
	if !slices.Equal(got, want) {
		t.Errorf("the export differs from the full backup's archive:\n%s", diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}

	// --paths: only /data/dir (and its parents' metadata) comes back.
	f.sh(wipe)
	it.backup(t, "restore", snaps[0].Key, "--from", it.to, "--to", "files", "--project", f.p.name, "--yes", "--paths", "/data/dir")
	if got, want := underDataDir(f.tree()), underDataDir(second); got != want || !strings.Contains(got, "data/dir/moved/numbers.txt") {
		t.Errorf("--paths /data/dir restored:\n%s", diffLines(want, got))
	}
	if got := f.tree(); strings.Contains(got, "data/hello.txt") || strings.Contains(got, "app.conf") {
		t.Errorf("--paths /data/dir restored more than /data/dir:\n%s", got)
	}

	// check passes, then finds a damaged pack.
	out = it.backup(t, "check", "--from", it.to, "--read-data")
	mustContain(t, out, "PASSED", "snapshots 2")
	pack := it.damagePack(t)
	out, stderr, err := dockerCmd(it.env, "backup", "check", "--from", it.to, "--read-data=100%")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("check of a damaged pack: %v (want exit status 4)\n%s\n%s", err, out, stderr)
	}
	mustContain(t, out+stderr, "FAILED", pack)

	// A restore that meets the damaged pack fails before anything is moved into place.
	failed := 0
	for _, s := range snaps {
		before := f.tree()
		out, stderr, err := dockerCmd(it.env, "backup", "restore", s.Key, "--from", it.to, "--to", "files", "--project", f.p.name, "--yes")
		if err == nil {
			continue
		}
		failed++
		mustContain(t, out+stderr, "untouched")
		if got := f.tree(); got != before {
			t.Errorf("a restore of %s that failed on the damaged pack changed the data:\n%s", s.Key, diffLines(before, got))
		}
		if !running(t, f.app) {
			t.Errorf("the app is not running after the failed restore of %s", s.Key)
		}
	}
	if failed == 0 {
		t.Errorf("no restore met the damaged pack %s", pack)
	}
}

// underDataDir keeps the lines of a tree listing about /data/dir and below.
func underDataDir(tree string) string {
	var out []string
	for _, l := range strings.Split(tree, "\n") {
		if strings.HasPrefix(l, "data/dir") || strings.Contains(l, "  data/dir") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// archiveEntries lists a .tar.zst's entries: name, type, permissions, owner, size, link,
// mtime, content hash (the Engine's archive also puts the file type's bits in the mode).
func archiveEntries(t *testing.T, file string) []string {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := zstd.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %c %o %d:%d %d %q %s %s", strings.TrimSuffix(h.Name, "/"), h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, h.Size,
			h.Linkname, h.ModTime.UTC().Format("2006-01-02T15:04:05"), hex.EncodeToString(sum.Sum(nil))[:16]))
	}
}

func TestIncrementalPostgres(t *testing.T) {
	t.Parallel()
	for _, k := range incrTargets {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			it := k.make(t)
			p := newProject(t)
			db := startPostgres(t, p, "db")
			fillPostgres(db, 3)
			first := db.checksums()
			it.backup(t, "run", "db", "--project", p.name, "--to", it.to, "--incremental")
			db.sql(`UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 3 = 0`)
			db.sql(`INSERT INTO odd (name) VALUES ('added between the snapshots')`)
			second := db.checksums()
			if equalMaps(first, second) {
				t.Fatal("the changes did not change the data")
			}
			out := it.backup(t, "run", "db", "--project", p.name, "--to", it.to, "--incremental")
			mustContain(t, out, "parent snapshot:")
			snaps := it.snapshots(t)
			if len(snaps) != 2 || snaps[0].Strategy != "postgres" {
				t.Fatalf("ls lists %+v, want two postgres snapshots", snaps)
			}
			db.sql(`DELETE FROM pgbench_accounts WHERE aid < 5000`)
			it.backup(t, "restore", snaps[1].Key, "--from", it.to, "--to", "db", "--project", p.name, "--yes")
			if got := db.checksums(); !equalMaps(got, first) {
				t.Errorf("after restoring the first snapshot: %v, want %v", got, first)
			}
			it.backup(t, "restore", snaps[0].Key, "--from", it.to, "--to", "db", "--project", p.name, "--yes")
			if got := db.checksums(); !equalMaps(got, second) {
				t.Errorf("after restoring the second snapshot: %v, want %v", got, second)
			}
			out = it.backup(t, "check", "--from", it.to, "--read-data")
			mustContain(t, out, "PASSED", "snapshots 2")
			// latest is the newest snapshot: verify restores it into a scratch copy and
			// compares the tables' rows with what the backup counted.
			out = it.backup(t, "verify", "latest", "--from", it.to, "--service", "db", "--project", p.name)
			mustContain(t, out, snaps[0].Key, "PASS")
			// export: the dump as a full backup stores it, zstd-compressed.
			exported := filepath.Join(t.TempDir(), "db.sql.zst")
			it.backup(t, "export", snaps[0].Key, "--from", it.to, "-o", exported)
			if dump, err := exec.Command("zstd", "-dc", exported).Output(); err != nil || !bytes.Contains(dump, []byte("PostgreSQL database dump complete")) {
				t.Errorf("the export is not a complete pg_dump script (%v, %d bytes)", err, len(dump))
			}
		})
	}
}

// dataHashScript lists every entry under /data with its metadata, and every file's SHA-256.
const dataHashScript = `cd / && find data -printf '%p|%y|%m|%U|%G|%s|%l|%n\n' | LC_ALL=C sort &&
find data -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`

// TestIncrementalSidecar: a job labelled incremental makes encrypted snapshots (the sidecar has
// recipients), keeps the repository's key file in its state directory, lists them, and its
// retention forgets the oldest and prunes; each restores exactly, with an identity or the key file.
func TestIncrementalSidecar(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	keys := t.TempDir()
	idFile, pub := ageKey(t, keys, "id.txt")
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.incremental=true", "docker-backup.retention=2")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/d && seq 1 200000 > /data/d/n.txt && head -c 3000000 /dev/urandom > /data/r.bin && ln -s r.bin /data/l")
	other := p.volumeService("other", "docker-backup.schedule=0 3 * * *")
	docker(t, "exec", other, "sh", "-c", "echo other > /data/o")
	_, backupsVol := startSidecar(t, p, "-e", "DOCKER_BACKUP_AGE_RECIPIENTS="+pub)
	// A job that is not incremental: one run asked for as incremental, one full.
	mustContain(t, backup(t, "run", "other", "--project", p.name, "--incremental"), "snapshot:")
	mustContain(t, backup(t, "run", "other", "--project", p.name), "sha256")
	if got := sidecarBackups(t, p.name, "other"); len(got) != 2 || got[0].Snapshot == got[1].Snapshot {
		t.Errorf("the sidecar lists %+v for other, want a snapshot and a full backup", got)
	}
	var trees []string
	for i := range 3 {
		docker(t, "exec", app, "sh", "-c", fmt.Sprintf("head -c 300000 /dev/urandom >> /data/r.bin && echo %d > /data/run-%d", i, i))
		trees = append(trees, docker(t, "exec", app, "sh", "-c", dataHashScript))
		out := backup(t, "run", "app", "--project", p.name)
		mustContain(t, out, "snapshot:")
	}
	listed := sidecarBackups(t, p.name, "app")
	if len(listed) != 2 || !listed[0].Snapshot || !listed[0].Encrypted || !listed[0].CreatedAt.After(listed[1].CreatedAt) {
		t.Fatalf("the sidecar lists %+v, want the 2 newest snapshots (retention 2), encrypted", listed)
	}
	mustContain(t, backup(t, "status", "--project", p.name), "volume (incremental)")
	if js := jobStatus(sidecarStatus(t, p.name), "app", "default"); js == nil || !js.Incremental || js.Runs["success"] != 3 {
		t.Errorf("the job's status: %+v, want incremental with 3 successful runs", js)
	}
	state := volumeDir(t, p.name+"_backup-state")
	keyFiles, _ := filepath.Glob(filepath.Join(state, "repository-*.key"))
	if len(keyFiles) != 1 {
		t.Fatalf("the state directory holds key files %v, want one", keyFiles)
	}
	if fi, err := os.Stat(keyFiles[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v, want mode 0600", keyFiles[0], fi.Mode(), err)
	}
	trust := filepath.Join(keys, "sidecar.pub")
	if err := os.WriteFile(trust, []byte(backup(t, "key", "-p", p.name)), 0o600); err != nil {
		t.Fatal(err)
	}
	from := volumeDir(t, backupsVol)
	out := backup(t, "check", "--from", from, "--read-data", "--trust", trust, "-i", idFile)
	mustContain(t, out, "PASSED", "snapshots 3") // app's two, other's one

	wipe := "find /data -mindepth 1 -delete"
	docker(t, "exec", app, "sh", "-c", wipe)
	backup(t, "restore", listed[0].Key, "--from", from, "--to", "app", "-p", p.name, "--yes", "--trust", trust, "-i", idFile)
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != trees[2] {
		t.Errorf("the newest snapshot restored differs from its source:\n%s", diffLines(trees[2], got))
	}
	docker(t, "exec", app, "sh", "-c", wipe)
	backup(t, "restore", listed[1].Key, "--from", from, "--to", "app", "-p", p.name, "--yes", "--trust", trust, "--repository-key-file", keyFiles[0])
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != trees[1] {
		t.Errorf("the older snapshot restored differs from its source:\n%s", diffLines(trees[1], got))
	}
	// Through the sidecar: a restore by name, and a verify.
	docker(t, "exec", app, "sh", "-c", wipe)
	out = backup(t, "restore", listed[0].Key, "--to", "app", "-p", p.name, "--yes")
	mustContain(t, out, "Restored "+listed[0].Key, "by sidecar")
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != trees[2] {
		t.Errorf("the newest snapshot restored by the sidecar differs from its source:\n%s", diffLines(trees[2], got))
	}
	out = backup(t, "verify", listed[1].Key, "--service", "app", "-p", p.name)
	mustContain(t, out, listed[1].Key, "tree digest", "PASS")
}

// TestIncrementalSidecarCheck: the sidecar's scheduled check of the repository is counted in
// its metrics: passed, then failed with problems once a pack is damaged.
func TestIncrementalSidecarCheck(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.incremental=true")
	docker(t, "exec", app, "sh", "-c", "head -c 3000000 /dev/urandom > /data/r.bin && echo hello > /data/a")
	sidecar, backupsVol := startSidecar(t, p, "-e", "DOCKER_BACKUP_CHECK_SCHEDULE=@every 2s", "-e", "DOCKER_BACKUP_CHECK_READ_DATA=100%")
	mustContain(t, backup(t, "run", "app", "--project", p.name), "snapshot:")
	ip := strings.TrimSpace(docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", sidecar))
	metricsURL := "http://" + ip + ":9090/metrics"
	passed := `docker_backup_repository_checks_total{result="passed",target="default"} `
	eventually(t, 30*time.Second, "a passed check in the metrics", func() error {
		body := httpGet(t, metricsURL)
		if !strings.Contains(body, passed) || strings.Contains(body, passed+"0\n") {
			return fmt.Errorf("no passed check yet")
		}
		if !strings.Contains(body, `docker_backup_repository_check_problems{target="default"} 0`) {
			return fmt.Errorf("problems not 0")
		}
		return nil
	})
	damaged := damageDirPack(t, volumeDir(t, backupsVol))
	eventually(t, 30*time.Second, "a failed check in the metrics", func() error {
		body := httpGet(t, metricsURL)
		if strings.Contains(body, `docker_backup_repository_checks_total{result="failed",target="default"} 0`) ||
			strings.Contains(body, `docker_backup_repository_check_problems{target="default"} 0`) {
			return fmt.Errorf("no failed check yet")
		}
		return nil
	})
	if logs := containerLogs(t, sidecar); !strings.Contains(logs, damaged) {
		t.Errorf("the sidecar's log does not name the damaged pack %s", damaged)
	}
	cmd := exec.Command(tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(httpGet(t, metricsURL))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestIncrementalEncryptedPlugin: --incremental with a recipient makes an encrypted repository
// whose key file the plugin keeps in its configuration directory; nothing of the data is in
// the clear on the target; the plugin restores with the kept key file, and with an identity
// and no key file (another host that only restores).
func TestIncrementalEncryptedPlugin(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	idFile, pub := ageKey(t, t.TempDir(), "id.txt")
	app := p.volumeService("app")
	marker := "plaintext-marker-" + p.name
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/d && for i in $(seq 1 2000); do echo "+marker+" $i; done > /data/d/m.txt && head -c 1000000 /dev/urandom > /data/r.bin")
	want := docker(t, "exec", app, "sh", "-c", dataHashScript)
	dir := t.TempDir()
	out, stderr, err := dockerCmd(nil, "backup", "run", "app", "-p", p.name, "--to", dir, "--incremental", "-r", pub)
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, stderr)
	}
	mustContain(t, stderr, "Made an encrypted repository", "key_file=")
	keyFiles, _ := filepath.Glob(filepath.Join(dockerConfig, "docker-backup", "repository-*.key"))
	if len(keyFiles) == 0 {
		t.Fatalf("no key file kept in %s/docker-backup", dockerConfig)
	}
	for _, f := range filesUnder(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("m.txt")) {
			t.Errorf("%s holds the data or a file name in the clear", f)
		}
	}
	// The second by a worker container beside the data: the two unchanged files not read.
	out, stderr, err = dockerCmd(dataPathEnv("on"), "backup", "run", "app", "-p", p.name, "--to", dir, "--incremental")
	if err != nil {
		t.Fatalf("run through a worker: %v\n%s\n%s", err, out, stderr)
	}
	mustContain(t, out, "parent snapshot:")
	mustContain(t, stderr, "Volume data path: a worker container", "files_read=0,", "files_unchanged=2,")
	snaps := incrTarget{to: dir}.snapshots(t)
	if len(snaps) != 2 || !snaps[0].Encrypted || !snaps[1].Encrypted {
		t.Fatalf("ls lists %+v, want two encrypted snapshots", snaps)
	}
	docker(t, "exec", app, "sh", "-c", "find /data -mindepth 1 -delete")
	backup(t, "restore", snaps[0].Key, "--from", dir, "--to", "app", "-p", p.name, "--yes")
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != want {
		t.Errorf("restored with the kept key file:\n%s", diffLines(want, got))
	}
	// Another host that only restores: an identity, no key file (a configuration of its own).
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pluginBinary, filepath.Join(other, "cli-plugins", "docker-backup")); err != nil {
		t.Fatal(err)
	}
	signing := filepath.Join(dockerConfig, "docker-backup", "signing.key")
	env := []string{"DOCKER_CONFIG=" + other, "DOCKER_BACKUP_SIGNING_KEY_FILE=" + signing}
	docker(t, "exec", app, "sh", "-c", "find /data -mindepth 1 -delete")
	if o, e, err := dockerCmd(env, "backup", "restore", snaps[0].Key, "--from", dir, "--to", "app", "-p", p.name, "--yes"); err == nil || !strings.Contains(e, "identity") {
		t.Errorf("a restore without the key file or an identity: %v\n%s\n%s", err, o, e)
	}
	if o, e, err := dockerCmd(env, "backup", "restore", snaps[0].Key, "--from", dir, "--to", "app", "-p", p.name, "--yes", "-i", idFile); err != nil {
		t.Fatalf("restore with an identity: %v\n%s\n%s", err, o, e)
	}
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != want {
		t.Errorf("restored with an identity:\n%s", diffLines(want, got))
	}
}

// TestIncrementalRedis: a dump strategy other than postgres (an RDB file) round trips through
// two snapshots.
func TestIncrementalRedis(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	r := startRedis(t, p, "", false)
	r.fill()
	first := r.state()
	dir := t.TempDir()
	backup(t, "run", "cache", "--project", p.name, "--to", dir, "--incremental")
	r.do("SET", "str", "changed")
	r.do("SET", "new-key", "between the snapshots")
	second := r.state()
	out := backup(t, "run", "cache", "--project", p.name, "--to", dir, "--incremental")
	mustContain(t, out, "parent snapshot:")
	snaps := incrTarget{to: dir}.snapshots(t)
	if len(snaps) != 2 || snaps[0].Strategy != "redis" {
		t.Fatalf("ls lists %+v, want two redis snapshots", snaps)
	}
	r.do("FLUSHALL")
	backup(t, "restore", snaps[1].Key, "--from", dir, "--to", "cache", "--project", p.name, "--yes")
	if got := r.state(); got != first {
		t.Errorf("after restoring the first snapshot:\n%.3000s", diffLines(first, got))
	}
	backup(t, "restore", "latest", "--from", dir, "--to", "cache", "--project", p.name, "--yes")
	if got := r.state(); got != second {
		t.Errorf("after restoring the latest snapshot:\n%.3000s", diffLines(second, got))
	}
}

// TestIncrementalKilled: a plugin killed (SIGKILL) while its incremental backup uploads
// publishes nothing; the repository still checks (the packs it left are reported, not an
// error), the next backup works, and it restores exactly.
func TestIncrementalKilled(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app")
	docker(t, "exec", app, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big.bin && echo small > /data/s")
	dir := t.TempDir()
	cmd := exec.Command("docker", "backup", "run", "app", "-p", p.name, "--to", dir, "--incremental")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "a pack uploaded", func() error {
		packs, _ := filepath.Glob(filepath.Join(dir, "_repository", "data", "*", "*"))
		for _, p := range packs {
			if !strings.HasPrefix(filepath.Base(p), ".") { // not a pack still being written
				return nil
			}
		}
		return fmt.Errorf("no pack yet")
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if snaps := (incrTarget{to: dir}).snapshots(t); len(snaps) != 0 {
		t.Fatalf("a killed backup published %+v", snaps)
	}
	out := backup(t, "check", "--from", dir, "--read-data")
	mustContain(t, out, "PASSED", "snapshots 0", "unindexed") // the packs it left: the next prune removes them
	want := docker(t, "exec", app, "sh", "-c", dataHashScript)
	mustContain(t, backup(t, "run", "app", "-p", p.name, "--to", dir, "--incremental"), "snapshot:")
	snaps := incrTarget{to: dir}.snapshots(t)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after the next backup, want 1", len(snaps))
	}
	docker(t, "exec", app, "sh", "-c", "find /data -mindepth 1 -delete")
	backup(t, "restore", snaps[0].Key, "--from", dir, "--to", "app", "-p", p.name, "--yes")
	if got := docker(t, "exec", app, "sh", "-c", dataHashScript); got != want {
		t.Errorf("restored after a killed backup:\n%s", diffLines(want, got))
	}
	mustContain(t, backup(t, "check", "--from", dir, "--read-data"), "PASSED", "snapshots 1")
}
