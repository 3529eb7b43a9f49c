package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFaultStagedVolumeRestore: a volume restore through the worker is staged. Held just
// before its commit, the backup is unpacked in a staging directory beside the data, the data
// is still as it was and the service still runs (it was never stopped); let go, the restore
// stops the service only to move the files into place, and the tree is the backup's with no
// staging directory left. A restore into another service sharing the volumes meanwhile leaves
// the held one's staging alone.
func TestFaultStagedVolumeRestore(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	if _, stderr, err := faultCmd(t, "run", "files", "--project", f.p.name, "--to", dir); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	key := onlyBackup(t, dir).Artifact
	backedUp := f.tree()
	f.sh(changeScript)
	changed := f.tree()
	startedAt := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app)

	release := filepath.Join(t.TempDir(), "release")
	proc := startFaultEnv(t, []string{"DOCKER_BACKUP_FAULT_RELEASE=" + release}, "restore-verified",
		"restore", key, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	proc.waitPoint("restore-verified")
	staged := f.sh("ls -A /data /config")
	if strings.Count(staged, ".docker-backup-restore-") != 2 {
		t.Errorf("want a staging directory in each volume while the restore is held; /data and /config hold:\n%s", staged)
	}
	f.sh("test \"$(cat /data/hello.txt)\" = changed && ! test -e /data/dir/sub")
	if now := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app); now != startedAt || !running(t, f.app) {
		t.Error("the service was stopped while the restore was only staged")
	}
	// Meanwhile a restore into another service that mounts the same volumes: its sweep of
	// leftovers spares the held restore's staging directories (locked while it lives).
	if _, stderr, err := faultCmd(t, "restore", key, "--from", dir, "--to", "filler", "--project", f.p.name, "--yes"); err != nil {
		t.Fatalf("a restore into the filler meanwhile: %v\n%s", err, stderr)
	}
	if again := f.sh("ls -A /data /config"); strings.Count(again, ".docker-backup-restore-") != 2 {
		t.Errorf("the held restore's staging directories were touched by another restore; /data and /config hold:\n%s", again)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := proc.wait(); code != 0 {
		t.Fatalf("the restore failed (exit %d):\n%s", code, proc.err.String())
	}
	mustContain(t, proc.err.String(), "Moving the restored files into place")
	if after := f.tree(); after != backedUp {
		t.Errorf("tree after the staged restore:\n%s", diffLines(backedUp, after))
	}
	if after := f.tree(); after == changed {
		t.Error("the restore changed nothing")
	}
	if now := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app); now == startedAt || !running(t, f.app) {
		t.Error("the service was not stopped for the commit, or not started again")
	}
}

// TestVolumeRestoreWithoutRoomToStage: a volume that has not the room for the backup beside
// its current data is restored in place instead (verified first, as before staging), and
// says so.
func TestVolumeRestoreWithoutRoomToStage(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.name + "_small"
	docker(t, "volume", "create", "--label", "com.docker.compose.project="+p.name,
		"--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=24m", vol)
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	app := p.service("files", pauseImage, "-v", vol+":/data")
	sh := func(script string) string { return docker(t, "exec", filler, "sh", "-c", script) }
	tree := func() string {
		return sh(`cd /data && ls -A && find . -printf '%p|%y|%m|%U|%G|%s\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`)
	}
	sh("head -c 14000000 /dev/urandom > /data/big.bin && echo hi > /data/small.txt && mkdir /data/d && echo x > /data/d/x")
	dir := t.TempDir()
	backup(t, "run", "files", "--project", p.name, "--to", dir)
	key := onlyBackup(t, dir).Artifact
	backedUp := tree()
	// 10 MB free, the backup is 14 MB: it cannot be staged.
	sh("head -c 14000000 /dev/urandom > /data/big.bin && echo changed > /data/small.txt && rm -r /data/d")
	_, stderr, err := dockerCmd(nil, "backup", "restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "Restoring in place", "/data has", "free", "Verifying the artifact")
	if after := tree(); after != backedUp {
		t.Errorf("tree after the restore in place:\n%s", diffLines(backedUp, after))
	}
	if !running(t, app) {
		t.Error("the service is not running after the restore")
	}
	// The same over the worker's attach stream (as with a remote engine): the stream in place
	// comes in frames on the worker's input.
	sh("echo changed again > /data/small.txt && rm -r /data/d")
	_, stderr = backupOverAttach(t, "restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes")
	mustContain(t, stderr, "attach stream", "Restoring in place")
	if after := tree(); after != backedUp {
		t.Errorf("tree after the restore in place over the attach stream:\n%s", diffLines(backedUp, after))
	}
}

// TestVolumeRestoreOfAMountedFile: a file bind-mounted on its own (it cannot be renamed over)
// is staged in the worker and rewritten at the commit, with its owner and mode; the directory
// volume beside it is restored too.
func TestVolumeRestoreOfAMountedFile(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	conf := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(conf, []byte("setting = 1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(conf, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	vol := p.volume("data")
	mounts := []string{"-v", vol + ":/data", "-v", conf + ":/etc/app.conf"}
	filler := p.service("filler", plainImage, mounts...)
	p.service("files", pauseImage, mounts...)
	sh := func(script string) string { return docker(t, "exec", filler, "sh", "-c", script) }
	state := func() string {
		return sh(`stat -c '%n %a %u:%g %s' /etc/app.conf && cat /etc/app.conf && cd /data && ls -A && find . -type f | LC_ALL=C sort | xargs sha256sum`)
	}
	sh("echo one > /data/a && mkdir /data/d && echo two > /data/d/b")
	dir := t.TempDir()
	out := backup(t, "run", "files", "--project", p.name, "--to", dir)
	mustContain(t, out, "a worker container beside the data")
	key := onlyBackup(t, dir).Artifact
	backedUp := state()
	mustContain(t, backedUp, "/etc/app.conf 640 1234:5678", "setting = 1")
	sh("echo 'setting = 2, longer than before' > /etc/app.conf && chmod 600 /etc/app.conf && chown 0:0 /etc/app.conf && rm -r /data/d && echo changed > /data/a")
	_, stderr, err := dockerCmd(nil, "backup", "restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "Moving the restored files into place")
	if after := state(); after != backedUp {
		t.Errorf("after the restore:\n%s", diffLines(backedUp, after))
	}
}
