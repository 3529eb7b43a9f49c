package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/minio/minio-go/v7"
)

// Faults of the environment: a full target, a database killed during its dump, the Docker
// engine restarted during a backup, S3 replacing an object between a restore's two reads,
// S3 down while the sidecar recovers.

// TestFaultTargetFull: the target fills up in the middle of a backup: the backup fails,
// leaves nothing (not even its temporary file), older backups are intact.
func TestFaultTargetFull(t *testing.T) {
	t.Parallel()
	dir := smallDisk(t, "12m")
	p := newProject(t)
	app := p.service("app", plainImage, append([]string{"-v", p.volume("data") + ":/data"}, idle...)...)
	docker(t, "exec", app, "sh", "-c", "echo small > /data/small")
	backup(t, "run", "app", "--project", p.name, "--to", dir)
	old := onlyBackup(t, dir).Artifact
	docker(t, "exec", app, "sh", "-c", "head -c 40000000 /dev/urandom > /data/big")
	stderr := backupFails(t, nil, "run", "app", "--project", p.name, "--to", dir)
	mustContain(t, stderr, "no space left on device", "nothing was stored")
	if files := filesUnder(t, dir); len(files) != 3 {
		t.Errorf("files on the full target: %q, want the older backup, its chunk list and its manifest", files)
	}
	if got := onlyBackup(t, dir).Artifact; got != old {
		t.Errorf("the older backup is not listed: %s", got)
	}
	backup(t, "restore", old, "--from", dir, "--to", "app", "--project", p.name, "--yes")
}

// TestFaultDatabaseKilledMidDump: the database container dies while it is dumped: the
// backup fails naming the dump, nothing is stored.
func TestFaultDatabaseKilledMidDump(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	s := newSubject(t, p, "postgres")
	dir := t.TempDir()
	release := filepath.Join(t.TempDir(), "release")
	proc := startFaultEnv(t, []string{"DOCKER_BACKUP_FAULT_RELEASE=" + release}, "backup-stream", "run", s.service, "--project", p.name, "--to", dir)
	proc.waitPoint("backup-stream")
	docker(t, "kill", s.container)
	os.WriteFile(release, nil, 0o600)
	if code := proc.wait(); code == 0 {
		t.Fatalf("the backup of a killed database succeeded:\n%s", proc.err.String())
	}
	mustContain(t, proc.err.String(), "dump of "+p.name+"/db", "nothing was stored")
	if ms := checkTarget(t, dir, nil, false); len(ms) != 0 {
		t.Errorf("a backup is listed: %+v", ms)
	}
}

// TestFaultDockerRestarted restarts the Docker engine while a backup streams (not parallel:
// every container of the host stops): the backup fails and stores nothing; the service
// (restart: unless-stopped) runs again and the next backup works.
func TestFaultDockerRestarted(t *testing.T) {
	p := newProject(t)
	vol := p.volume("data")
	app := p.service("app", plainImage, append([]string{"--restart", "unless-stopped", "-v", vol + ":/data"}, idle...)...)
	docker(t, "exec", app, "sh", "-c", "head -c 600000000 /dev/urandom > /data/blob")
	dir := t.TempDir()
	cmd := exec.Command("docker", "backup", "run", "app", "--project", p.name, "--to", dir)
	cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+dockerConfig)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// In the middle of the stream: the artifact's temporary file is being written.
	eventually(t, time.Minute, "the backup streaming", func() error {
		if len(tempFiles(t, dir)) == 0 {
			return fmt.Errorf("no temporary file yet")
		}
		return nil
	})
	restartDockerd(t)
	// The engine may finish the copy before it stops (then the backup is complete and
	// verified) or cut it (then it fails and stores nothing): never anything in between.
	err := <-done
	ms := checkTarget(t, dir, nil, false)
	switch {
	case err == nil && len(ms) != 1:
		t.Errorf("the backup succeeded but %d backups are listed", len(ms))
	case err != nil:
		mustContain(t, stderr.String(), "nothing was stored")
		if len(ms) != 0 {
			t.Errorf("a failed backup is listed: %+v", ms)
		}
	}
	t.Logf("the backup across the engine's restart: %v", err)
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	waitRunning(t, app)
	docker(t, "exec", app, "rm", "/data/blob")
	backup(t, "run", "app", "--project", p.name, "--to", dir)
}

// restartDockerd restarts the engine the way it was started: with systemd, or (as
// test/setup.sh starts it) by signalling it and starting the same command line again.
func restartDockerd(t *testing.T) {
	t.Helper()
	if exec.Command("systemctl", "is-active", "--quiet", "docker").Run() == nil {
		if out, err := exec.Command("systemctl", "restart", "docker").CombinedOutput(); err != nil {
			t.Fatalf("systemctl restart docker: %v %s", err, out)
		}
	} else {
		out, err := exec.Command("pidof", "dockerd").Output()
		if err != nil {
			t.Fatalf("no dockerd process to restart: %v", err)
		}
		pid, _ := strconv.Atoi(strings.Fields(string(out))[0])
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(90 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("dockerd did not stop")
			}
		}
		log, _ := os.OpenFile("/var/log/dockerd.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting dockerd again: %v", err)
		}
		go func() { _ = cmd.Wait() }()
	}
	eventually(t, 2*time.Minute, "the Docker engine back", func() error {
		_, stderr, err := dockerCmd(nil, "info")
		if err != nil {
			return fmt.Errorf("%v %s", err, stderr)
		}
		return nil
	})
}

// startFaultEnv is startFault with extra environment.
func startFaultEnv(t *testing.T, env []string, point string, args ...string) *faultProc {
	t.Helper()
	p := &faultProc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(faultPlugin(t), append([]string{"backup"}, args...)...)
	p.cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+faultConfig, "DOCKER_BACKUP_FAULT="+point), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait waits for the plugin to end and returns its exit code.
func (p *faultProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Minute):
		p.t.Fatalf("the plugin did not end:\n%s", p.err.String())
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// TestFaultS3ObjectReplacedDuringRestore: the artifact is replaced on S3 between the
// restore's verification and its application: the restore refuses the new bytes (the object
// is pinned by its ETag) and PostgreSQL rolls back; S3 never lets a backup replace an object.
func TestFaultS3ObjectReplacedDuringRestore(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("pinned")
	p := newProject(t)
	s := newSubject(t, p, "postgres")
	url := m.url("pinned/site")
	if out, stderr, err := faultCmdEnv(t, m.env(), "run", "db", "--project", p.name, "--to", url); err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, stderr)
	}
	s.change()
	changed := s.waitState(t)
	var key string
	for _, k := range m.objects("pinned") {
		if !strings.HasSuffix(k, artifact.ManifestSuffix) && !strings.HasSuffix(k, artifact.ChunksSuffix) {
			key = strings.TrimPrefix(k, "site/")
		}
	}
	release := filepath.Join(t.TempDir(), "release")
	proc := startFaultEnv(t, append(m.env(), "DOCKER_BACKUP_FAULT_RELEASE="+release), "restore-verified",
		"restore", key, "--from", url, "--to", "db", "--project", p.name, "--yes")
	proc.waitPoint("restore-verified")
	// The forger replaces the verified object with other bytes of the same size.
	obj, err := m.client.GetObject(context.Background(), "pinned", "site/"+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	good.ReadFrom(obj)
	bad := bytes.Repeat([]byte{'x'}, good.Len())
	if _, err := m.client.PutObject(context.Background(), "pinned", "site/"+key, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(release, nil, 0o600)
	if code := proc.wait(); code == 0 {
		t.Fatalf("a restore of a replaced object succeeded:\n%s", proc.err.String())
	}
	mustContain(t, proc.err.String(), "replaced since it was first read")
	if after := s.waitState(t); after != changed {
		t.Errorf("the database changed:\n%s", diffLines(changed, after))
	}

	// A Put never replaces an object (If-None-Match: *). The credentials come from a prefix
	// of this test's own (the environment is the process's, shared with parallel tests).
	os.Setenv("E2E_PINNED_ACCESS_KEY_ID", m.user)
	os.Setenv("E2E_PINNED_SECRET_ACCESS_KEY", m.secret)
	tgt, err := targets.OpenWith(url, "E2E_PINNED")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Put(context.Background(), key, strings.NewReader("overwrite")); !errors.Is(err, target.ErrExist) {
		t.Errorf("Put over an existing object: %v, want ErrExist", err)
	}
}

// faultCmdEnv is faultCmd with extra environment.
func faultCmdEnv(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(faultPlugin(t), append([]string{"backup"}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+faultConfig), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// TestFaultS3DownAtRecovery: the sidecar is killed in the middle of an upload to S3, and S3 is
// down when it starts again: recovery cannot settle the interrupted run, says so in status,
// retries, and finishes once S3 is back.
func TestFaultS3DownAtRecovery(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("recover")
	p := newProject(t)
	app := p.volumeService("app")
	docker(t, "exec", app, "sh", "-c", "head -c 20000000 /dev/urandom > /data/blob")
	sidecar, _ := startSidecarImage(t, p, faultSidecarImage(t), append([]string{"--network", "host", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET=" + m.url("recover"),
		"-e", "DOCKER_BACKUP_FAULT=backup-stream", "-e", "DOCKER_BACKUP_FAULT_ARMED=/var/lib/docker-backup/fault-armed"}, envFlags(m.env())...)...)
	armFault(t, p)
	done := pluginInBackground(t, "run", "app", "--project", p.name)
	waitSidecarPoint(t, sidecar, "backup-stream", done)
	m.kill()
	hitSidecar(t, sidecar, true)
	<-done
	eventually(t, time.Minute, "recovery pending while S3 is down", func() error {
		if st := sidecarStatus(t, p.name); len(st.Recovery) == 0 {
			return fmt.Errorf("no pending recovery")
		}
		return nil
	})
	mustContain(t, backup(t, "status", "--project", p.name), "Recovery after a crash is not finished", "finish the interrupted run")
	m.start()
	eventually(t, 3*time.Minute, "recovery finished once S3 is back", func() error {
		if st := sidecarStatus(t, p.name); len(st.Recovery) != 0 {
			return fmt.Errorf("pending: %q", st.Recovery)
		}
		return nil
	})
	if left := m.incompleteUploads("recover"); len(left) != 0 {
		t.Errorf("unfinished uploads left: %q", left)
	}
	for _, k := range m.objects("recover") {
		if !strings.Contains(k, "_catalog/") {
			t.Errorf("object %s left by the interrupted run", k)
		}
	}
	if st := sidecarStatus(t, p.name); len(st.OneOff) == 0 || st.OneOff[0].Status != "interrupted" {
		t.Errorf("the run: %+v", st.OneOff)
	}
	waitRunning(t, app)
}

// TestFaultS3DownAtRecoveryKilledTwice: as TestFaultS3DownAtRecovery, but the sidecar is
// killed (SIGKILL) a second time while the interrupted run is still waiting for S3. Finishing
// that run is kept in the catalog, so the third life still finishes it once S3 is back.
func TestFaultS3DownAtRecoveryKilledTwice(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("recover")
	p := newProject(t)
	app := p.volumeService("app")
	docker(t, "exec", app, "sh", "-c", "head -c 20000000 /dev/urandom > /data/blob")
	sidecar, _ := startSidecarImage(t, p, faultSidecarImage(t), append([]string{"--network", "host", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET=" + m.url("recover"),
		"-e", "DOCKER_BACKUP_FAULT=backup-stream", "-e", "DOCKER_BACKUP_FAULT_ARMED=/var/lib/docker-backup/fault-armed"}, envFlags(m.env())...)...)
	armFault(t, p)
	done := pluginInBackground(t, "run", "app", "--project", p.name)
	waitSidecarPoint(t, sidecar, "backup-stream", done)
	m.kill()
	hitSidecar(t, sidecar, true)
	<-done
	pending := func(what string) {
		t.Helper()
		eventually(t, time.Minute, what, func() error {
			for _, task := range sidecarStatus(t, p.name).Recovery {
				if strings.Contains(task, "finish the interrupted run") {
					return nil
				}
			}
			return fmt.Errorf("no pending recovery of the run")
		})
	}
	pending("recovery pending while S3 is down")
	hitSidecar(t, sidecar, true) // killed again, S3 still down
	pending("recovery still pending after the second kill")
	m.start()
	eventually(t, 3*time.Minute, "recovery finished once S3 is back", func() error {
		if st := sidecarStatus(t, p.name); len(st.Recovery) != 0 {
			return fmt.Errorf("pending: %q", st.Recovery)
		}
		return nil
	})
	if left := m.incompleteUploads("recover"); len(left) != 0 {
		t.Errorf("unfinished uploads left: %q", left)
	}
	for _, k := range m.objects("recover") {
		if !strings.Contains(k, "_catalog/") {
			t.Errorf("object %s left by the interrupted run", k)
		}
	}
	if st := sidecarStatus(t, p.name); len(st.OneOff) == 0 || st.OneOff[0].Status != "interrupted" {
		t.Errorf("the run: %+v", st.OneOff)
	}
	if n := strings.TrimSpace(docker(t, "inspect", "-f", "{{.RestartCount}}", sidecar)); n != "2" {
		t.Errorf("the sidecar restarted %s times, want 2", n)
	}
	waitRunning(t, app)
}

// smallDisk is a directory on a tmpfs of the given size (the tests run as root): a target
// that fills up.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}
