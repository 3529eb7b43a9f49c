package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/commands/output"
)

// detectSizeFiles: 10 entries, 8,600 bytes below /data; *.log and cache/ (the label) leave out
// app.log, cache/, cache/x and cache/y, *.dat (--exclude) tmp.dat: 5 entries, 5,300 bytes.
const detectSizeFiles = `set -e
mkdir -p /data/sub /data/cache
head -c 1000 /dev/zero > /data/a.txt
head -c 2000 /dev/zero > /data/b.bin
head -c 300 /dev/zero > /data/sub/c.txt
head -c 500 /dev/zero > /data/app.log
head -c 4000 /dev/zero > /data/cache/x
head -c 100 /dev/zero > /data/cache/y
head -c 700 /dev/zero > /data/tmp.dat
`

// TestDetectSizes: detect shows a volume service's size with and without its exclusions (its
// label and --exclude both apply) — exactly the entries and bytes of the tree, and what a
// backup with the same patterns holds — walked in place, by a worker container (the service
// stopped), and with the worker off the Engine's own size of the named volume, saying that
// sizes with the exclusions need the worker; --no-size measures nothing.
func TestDetectSizes(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("sized", "docker-backup.exclude=*.log, cache/")
	docker(t, "exec", app, "sh", "-c", detectSizeFiles)
	args := []string{"detect", "--project", p.name, "--exclude", "*.dat"}
	total, kept, left := output.Amount{Files: 10, Bytes: 8600}, output.Amount{Files: 5, Bytes: 3300}, output.Amount{Files: 5, Bytes: 5300}
	wantLine := fmt.Sprintf("%s in 10 files; with the exclusions (*.log, cache/, *.dat): %s in 5 files (5 files, %s left out)",
		output.Bytes(8600), output.Bytes(3300), output.Bytes(5300))

	for _, mode := range []string{"auto", "on"} {
		if mode == "on" {
			docker(t, "stop", "-t", "1", app) // a worker container mounts a stopped service's volumes
		}
		env := dataPathEnv(mode)
		mustContain(t, backupWithEnv(t, env, args...), "  * volume    label docker-backup.strategy=volume\n              "+wantLine+"\n")
		z := detectedSize(t, env, append(args, "--format", "json")...)
		if z.Total == nil || *z.Total != total || z.Kept == nil || *z.Kept != kept || z.LeftOut == nil || *z.LeftOut != left ||
			strings.Join(z.Exclude, " ") != "*.log cache/ *.dat" {
			t.Errorf("%s: json %+v %+v %+v %q", mode, z.Total, z.Kept, z.LeftOut, z.Exclude)
		}
	}
	// What a backup with the same patterns holds is what detect said it keeps.
	dir := t.TempDir()
	backup(t, "run", "sized", "--project", p.name, "--to", dir, "--exclude", "*.log", "--exclude", "cache/", "--exclude", "*.dat")
	if m := onlyBackup(t, dir); m.Contents == nil || m.Contents.Files != kept.Files || m.Contents.Bytes != kept.Bytes {
		t.Errorf("the backup holds %+v, detect said %+v", m.Contents, kept)
	}

	off := dataPathEnv("off")
	out := backupWithEnv(t, off, args...)
	mustContain(t, out, "/data: "+output.Bytes(8600)+" (the Engine's figure for the volume "+p.name+"_sized)",
		"sizes with the exclusions (*.log, cache/, *.dat) need the worker: the worker is off (DOCKER_BACKUP_WORKER=off)")
	z := detectedSize(t, off, append(args, "--format", "json")...)
	if len(z.EngineSizes) != 1 || z.EngineSizes[0].Bytes == nil || *z.EngineSizes[0].Bytes != 8600 || z.Total != nil {
		t.Errorf("worker off: json %+v", z)
	}
	if out := backup(t, "detect", "--project", p.name, "--no-size"); strings.Contains(out, "files") {
		t.Errorf("--no-size measured:\n%s", out)
	}
}

// detectedSize is the volume size detect's JSON gives of the only service.
func detectedSize(t *testing.T, env []string, args ...string) output.VolumeSize {
	t.Helper()
	var got []output.DetectedService
	if err := json.Unmarshal([]byte(backupWithEnv(t, env, args...)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].VolumeSize == nil {
		t.Fatalf("detect: %+v", got)
	}
	return *got[0].VolumeSize
}
