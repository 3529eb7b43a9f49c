package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
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

// noWorkersLeft fails the test when a worker container of a project's service is still
// there after a few seconds (a worker that finished exits and the engine removes it: the
// plugin does not wait for that).
func noWorkersLeft(t *testing.T, project, service string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := workersOf(t, project, service)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("worker containers of %s/%s left: %v", project, service, left)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWorkerOfKilledPluginIsReaped: kill -9 of the plugin in the middle of a volume backup
// ends its worker (its stream breaks) and the engine removes it, with nobody left to ask;
// a worker left anyway (planted here: one past its lifetime) is removed by the next run.
// Nothing of the killed backup is published.
func TestWorkerOfKilledPluginIsReaped(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	p := startFaultEnv(t, []string{"DOCKER_BACKUP_WORKER=on"}, "backup-stream", "run", "files", "--project", f.p.name, "--to", dir)
	p.waitPoint("backup-stream")
	if len(workersOf(t, f.p.name, "files")) != 1 {
		t.Fatalf("no worker container while the backup streams; stderr:\n%s", p.err.String())
	}
	p.kill(syscall.SIGKILL)
	eventually(t, 30*time.Second, "the killed plugin's worker removed by itself", func() error {
		if left := workersOf(t, f.p.name, "files"); len(left) != 0 {
			return fmt.Errorf("worker containers: %v", left)
		}
		return nil
	})
	// A leftover the engine could not remove (a worker that hung): past its lifetime. It is
	// planted with a lifetime of a few seconds, then waited out: planted already expired, any
	// plugin of a parallel test may remove it between its creation and its start.
	expires := time.Now().Add(3 * time.Second).Unix()
	planted := strings.TrimSpace(docker(t, "run", "-d", "--name", "docker-backup-worker-"+f.p.name+"-planted",
		"--label", "org.docker-backup.scratch=planted", "--label", "org.docker-backup.worker=backup",
		"--label", "org.docker-backup.scratch.owner=process:elsewhere", "--label", "org.docker-backup.scratch.expires="+strconv.FormatInt(expires, 10),
		"--label", "org.docker-backup.scratch.service="+f.p.name+"/files", plainImage, "sleep", "600"))
	t.Cleanup(func() { _, _, _ = dockerCmd(nil, "rm", "-f", planted) })
	time.Sleep(time.Until(time.Unix(expires+1, 0)))
	out, stderr, err := dockerCmd([]string{"DOCKER_BACKUP_WORKER=on"}, "backup", "run", "files", "--project", f.p.name, "--to", dir)
	if err != nil {
		t.Fatalf("the next run: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "Removed a leftover scratch container (container=docker-backup-worker-"+f.p.name+"-planted") {
		t.Logf("the leftover worker was removed by another plugin process (a parallel test); stderr:\n%s", stderr)
	}
	noWorkersLeft(t, f.p.name, "files")
	if ms := listBackups(t, dir); len(ms) != 1 {
		t.Errorf("want only the second backup published, found %d", len(ms))
	}
}

// TestWorkerOverAttachStream: when the engine cannot mount the plugin's socket directory (as
// with a remote engine), the worker still runs and sends the stored stream over its attach
// stream, and takes a restore's over it (a verify's too: a staged restore into a scratch copy
// and a count).
func TestWorkerOverAttachStream(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	before := f.tree()
	dir := t.TempDir()
	run := func(args ...string) (string, string) {
		t.Helper()
		return backupOverAttach(t, args...)
	}
	out, stderr := run("run", "files", "--project", f.p.name, "--to", dir)
	mustContain(t, stderr, "attach stream")
	mustContain(t, out, "a worker container beside the data")
	if strings.Contains(stderr, "The worker wrote the backup file") {
		t.Errorf("the worker wrote the backup file itself with no socket to give it the descriptor; stderr:\n%s", stderr)
	}
	m := onlyBackup(t, dir)
	out, stderr = run("verify", m.Artifact, "--from", dir)
	mustContain(t, stderr, "attach stream")
	mustContain(t, out, "PASS")
	f.sh(changeScript)
	_, stderr = run("restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	mustContain(t, stderr, "attach stream")
	if after := f.tree(); after != before {
		t.Errorf("tree after a restore over the attach stream differs:\n%s", diffLines(before, after))
	}
	noWorkersLeft(t, f.p.name, "files")
}

// backupOverAttach runs docker backup with its TMPDIR hidden from dockerd (a private mount
// namespace), so the engine cannot mount the worker's socket directory: the worker's data goes
// over its attach stream, as with a remote engine.
func backupOverAttach(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed for this test")
	}
	// Short: the socket's path must fit the kernel's limit (108 bytes), as it does by default.
	hidden, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hidden) })
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
