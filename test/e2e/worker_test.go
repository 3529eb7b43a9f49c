package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// workersOf lists the worker containers of a project's service, running or not.
func workersOf(t *testing.T, project, service string) []string {
	t.Helper()
	return strings.Fields(docker(t, "ps", "-aq", "--filter", "label=org.docker-backup.worker",
		"--filter", "label=org.docker-backup.scratch.service="+project+"/"+service))
}

// TestWorkerOfKilledPluginIsReaped: kill -9 of the plugin in the middle of a volume backup
// leaves its worker container; the next run removes it, and nothing of the killed backup is
// published.
func TestWorkerOfKilledPluginIsReaped(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	p := startFault(t, "backup-stream", "run", "files", "--project", f.p.name, "--to", dir)
	p.waitPoint("backup-stream")
	if len(workersOf(t, f.p.name, "files")) != 1 {
		t.Fatalf("no worker container while the backup streams; stderr:\n%s", p.err.String())
	}
	p.kill(syscall.SIGKILL)
	// The worker is left behind (nobody could remove it), unless another test's plugin,
	// starting meanwhile, already reaped it: any plugin removes the workers of dead owners.
	leftover := workersOf(t, f.p.name, "files")
	// The next run reaps it (its owner is dead) and backs up.
	out, stderr, err := dockerCmd(nil, "backup", "run", "files", "--project", f.p.name, "--to", dir)
	if err != nil {
		t.Fatalf("the next run: %v\n%s\n%s", err, out, stderr)
	}
	if len(leftover) == 1 && !strings.Contains(stderr, "Removed a leftover scratch container (container=docker-backup-worker-") {
		t.Logf("the leftover worker was removed by another plugin process (a parallel test)")
	}
	if left := workersOf(t, f.p.name, "files"); len(left) != 0 {
		t.Errorf("worker containers left after the next run: %v", left)
	}
	if ms := listBackups(t, dir); len(ms) != 1 {
		t.Errorf("want only the second backup published, found %d", len(ms))
	}
}

// TestWorkerOverAttachStream: when the engine cannot mount the plugin's socket directory (as
// with a remote engine), the worker still runs and sends the stored stream over its attach
// stream. A private mount namespace hides the plugin's TMPDIR from dockerd.
func TestWorkerOverAttachStream(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed for this test")
	}
	f := newVolumeFixture(t)
	before := f.tree()
	dir := t.TempDir()
	hidden := filepath.Join(t.TempDir(), "private-tmp")
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs tmpfs "$TMPDIR" && exec docker backup "$@"`, "sh")
		cmd.Args = append(cmd.Args, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig, "TMPDIR="+hidden, "DOCKER_BACKUP_WORKER=on")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		done := make(chan error, 1)
		go func() { done <- cmd.Run() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("docker backup %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), errb.String())
			}
		case <-time.After(5 * time.Minute):
			t.Fatal("timed out")
		}
		return out.String(), errb.String()
	}
	out, stderr := run("run", "files", "--project", f.p.name, "--to", dir)
	mustContain(t, stderr, "attach stream")
	mustContain(t, out, "a worker container beside the data")
	m := onlyBackup(t, dir)
	f.sh(changeScript)
	_, stderr = run("restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	mustContain(t, stderr, "attach stream")
	if after := f.tree(); after != before {
		t.Errorf("tree after a restore over the attach stream differs:\n%s", diffLines(before, after))
	}
	if left := workersOf(t, f.p.name, "files"); len(left) != 0 {
		t.Errorf("worker containers left: %v", left)
	}
}
