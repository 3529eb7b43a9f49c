package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSidecarKilledDuringStopBackup kills the sidecar (SIGKILL) while it has the app
// stopped for a backup: once Docker restarts it, the app runs again, the run is
// "interrupted", no partial artifact is listed or left, and the next run succeeds; then
// again while it has the app stopped for an in-place restore.
func TestSidecarKilledDuringStopBackup(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.stop=true")
	// Incompressible data, so that the backup takes long enough to be caught in the middle.
	docker(t, "exec", app, "sh", "-c", "head -c 700000000 /dev/urandom > /data/blob && echo small > /data/small")
	// Through the archive API: a restore through a worker is staged and has the app stopped
	// only for a moment (TestFaultSidecarRestore kills the sidecar during one); this one keeps
	// it stopped while it writes, long enough to be caught.
	sidecar, backups := startSidecar(t, p, "-e", "DOCKER_BACKUP_WORKER=off")

	// Kill it once the app is stopped and the artifact is being written to the target.
	runDone := backupInMidStream(t, p, app, volumeDir(t, backups))
	pid, err := strconv.Atoi(strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Pid}}", sidecar)))
	if err != nil || pid <= 0 {
		t.Fatalf("sidecar pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-runDone; err == nil {
		t.Error("docker backup run succeeded although the sidecar was killed during the backup")
	}

	// Docker restarts the sidecar (restart: unless-stopped); its recovery starts the app.
	eventually(t, 90*time.Second, "the app runs again after the sidecar's restart", func() error {
		if !running(t, app) {
			return fmt.Errorf("app not running")
		}
		return nil
	})
	waitSidecar(t, sidecar)
	if n := strings.TrimSpace(docker(t, "inspect", "-f", "{{.RestartCount}}", sidecar)); n == "0" {
		t.Errorf("the sidecar was not restarted by Docker (RestartCount %s)", n)
	}
	js := jobStatus(sidecarStatus(t, p.name), "app", "default")
	if js == nil || js.Last == nil || js.Last.Status != "interrupted" || js.Runs["interrupted"] != 1 {
		t.Fatalf("job after the crash: %+v", js)
	}
	if got := sidecarBackups(t, p.name, "app"); len(got) != 0 {
		t.Errorf("a partial backup is listed: %+v", got)
	}
	if left := filesUnder(t, volumeDir(t, backups)); len(left) != 0 {
		t.Errorf("the interrupted run left files on the target: %q", left)
	}
	logs := containerLogs(t, sidecar)
	mustContain(t, logs, "a run was interrupted by a crash of the sidecar", "started a container the interrupted run had stopped")

	// The next run succeeds and is complete.
	backup(t, "run", "app", "--project", p.name)
	js = jobStatus(sidecarStatus(t, p.name), "app", "default")
	if js.Last == nil || js.Last.Status != "success" || js.Runs["success"] != 1 {
		t.Errorf("the run after recovery: %+v", js)
	}
	got := sidecarBackups(t, p.name, "app")
	if len(got) != 1 {
		t.Fatalf("%d backups after the next run, want 1", len(got))
	}
	if !running(t, app) {
		t.Error("the app is not running after the next run")
	}

	// Killed again, this time during a restore that has the app stopped: the app runs again.
	restore := exec.Command("docker", "backup", "restore", got[0].Key, "--to", "app", "--project", p.name, "--yes")
	restore.Env = append(restore.Environ(), "DOCKER_CONFIG="+dockerConfig)
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); listedRunning(t, app); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restore never stopped the app")
		}
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Pid}}", sidecar)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = restore.Wait()
	eventually(t, 90*time.Second, "the app runs again after a crash during a restore", func() error {
		if !running(t, app) {
			return fmt.Errorf("app not running")
		}
		return nil
	})
	waitSidecar(t, sidecar)
	mustContain(t, containerLogs(t, sidecar), "a restore was interrupted by a crash of the sidecar", "started the container of an interrupted restore")
	// It had begun to write (the app was stopped for it): partly restored, which a volume
	// restore in place cannot undo.
	if rs := sidecarStatus(t, p.name).Restores; len(rs) != 1 || rs[0].Status != "interrupted" || rs[0].Key != got[0].Key || !rs[0].Partial {
		t.Errorf("restores in status: %+v, want one interrupted and partial", rs)
	}
	mustContain(t, backup(t, "status", "--project", p.name), "Recent restores:", "into app: interrupted")
}

// TestSidecarInvalidLabels: each invalid label is reported with its container, label and
// value; the valid jobs, including a valid job beside an invalid one on the same service,
// keep running.
func TestSidecarInvalidLabels(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	svc := p.volumeService
	good := svc("good", "docker-backup.schedule=@every 2s", "docker-backup.retention=2")
	docker(t, "exec", good, "sh", "-c", "echo data > /data/file")
	svc("badcron", "docker-backup.schedule=61 * * * *")
	svc("badstrategy", "docker-backup.schedule=@daily", "docker-backup.strategy=oracle")
	svc("badretention", "docker-backup.schedule=@daily", "docker-backup.retention=-1")
	svc("badtarget", "docker-backup.schedule=@daily", "docker-backup.target=offsite")
	svc("badpaths", "docker-backup.schedule=@daily", "docker-backup.paths=/etc")
	svc("escape", "docker-backup.schedule=@daily", "docker-backup.paths=/data/../etc")
	svc("mixed", "docker-backup.nightly.schedule=@daily", "docker-backup.weekly.schedule=every sunday")
	sidecar, backups := startSidecar(t, p)

	st := sidecarStatus(t, p.name)
	problems := strings.Join(st.Problems, "\n")
	for _, want := range []string{
		p.name + "-badcron-1: label docker-backup.schedule=\"61 * * * *\"",
		p.name + "-badstrategy-1: label docker-backup.strategy=\"oracle\": unknown strategy",
		p.name + "-badretention-1: label docker-backup.retention=\"-1\"",
		p.name + "-badtarget-1: label docker-backup.target=\"offsite\": no target \"offsite\" is defined on the sidecar (defined: default)",
		p.name + "-badpaths-1: label docker-backup.paths=\"/etc\": path /etc is not inside any of the container's volumes",
		p.name + "-escape-1: label docker-backup.paths=\"/data/../etc\"",
		p.name + "-mixed-1: label docker-backup.weekly.schedule=\"every sunday\"",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not report %q:\n%s", want, problems)
		}
	}
	var jobs []string
	for _, j := range st.Jobs {
		jobs = append(jobs, j.Service+"/"+j.Job)
	}
	if strings.Join(jobs, " ") != "good/default mixed/nightly" {
		t.Errorf("scheduled jobs %q, want the good one and mixed/nightly", jobs)
	}
	// The good job runs on and prunes; the table shows the problems too.
	waitRuns(t, p.name, "good", "default", 3, time.Minute)
	eventually(t, 20*time.Second, "retention of the good job", func() error {
		if n := len(sidecarBackups(t, p.name, "good")); n != 2 {
			return fmt.Errorf("%d backups, want 2", n)
		}
		return nil
	})
	mustContain(t, backup(t, "status", "--project", p.name), "7 invalid label(s)", "badcron", "good/default")

	// A service without labels is backed up once through the sidecar (detected strategy,
	// default target), and no job's retention ever prunes it.
	unlabelled := p.service("unlabelled", plainImage, append([]string{"-v", p.volume("unlabelled") + ":/srv"}, idle...)...)
	docker(t, "exec", unlabelled, "sh", "-c", "echo hi > /srv/x")
	out := backup(t, "run", "unlabelled", "--project", p.name)
	mustContain(t, out, "with the volume strategy", "by sidecar")
	if ms := sidecarBackups(t, p.name, "unlabelled"); len(ms) != 1 || ms[0].Job != "" {
		t.Errorf("one-off backup: %+v", ms)
	}
	mustContain(t, backup(t, "ls", "--project", p.name, "--service", "unlabelled"), "(manual)")
	// An enabled service without a schedule is backed up by hand as its labels say (only /data/keep).
	manual := p.volumeService("manual", "docker-backup.paths=/data/keep")
	docker(t, "exec", manual, "sh", "-c", "mkdir /data/keep /data/skip && echo k > /data/keep/k && echo s > /data/skip/s")
	backup(t, "run", "manual", "--project", p.name)
	if ms := sidecarBackups(t, p.name, "manual"); len(ms) != 1 || manifestFile(t, volumeDir(t, backups), ms[0].Key).Source["paths"] != "/data/keep" {
		t.Errorf("one-off backup of a labelled service: %+v", ms)
	}
	eventually(t, 20*time.Second, "status lists the unscheduled service, not as a problem", func() error {
		st := sidecarStatus(t, p.name)
		if strings.Join(st.Unscheduled, ",") != "manual" || len(st.Problems) != 7 {
			return fmt.Errorf("unscheduled %q, %d problems", st.Unscheduled, len(st.Problems))
		}
		return nil
	})
	// Flags of direct backups are refused rather than ignored when the sidecar runs the job.
	mustContain(t, backupFails(t, nil, "run", "good", "--project", p.name, "--compression", "gzip"), "apply to direct backups", "--no-sidecar")
	mustContain(t, containerLogs(t, sidecar), "invalid backup configuration", "unknown strategy")
}

// tempFiles lists the targets' temporary (unfinished) files under dir.
func tempFiles(t *testing.T, dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSidecarStoppedDuringStopBackup stops the sidecar (SIGTERM, docker stop) while it has the
// app stopped for a backup asked for by the plugin: the run is cancelled, the app is started
// again before the sidecar exits, the run is recorded as failed and nothing is listed.
func TestSidecarStoppedDuringStopBackup(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.stop=true")
	docker(t, "exec", app, "sh", "-c", "head -c 700000000 /dev/urandom > /data/blob")
	sidecar, backups := startSidecar(t, p)
	dir := volumeDir(t, backups)
	runDone := backupInMidStream(t, p, app, dir)
	docker(t, "stop", "-t", "60", sidecar)
	<-runDone
	if !running(t, app) {
		t.Fatal("the app is not running after the sidecar stopped")
	}
	if code := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.ExitCode}}", sidecar)); code != "0" {
		t.Errorf("the sidecar exited with %s:\n%s", code, containerLogs(t, sidecar))
	}
	if left := filesUnder(t, dir); len(left) != 0 {
		t.Errorf("the cancelled run left files: %q", left)
	}
	docker(t, "start", sidecar)
	waitSidecar(t, sidecar)
	js := jobStatus(sidecarStatus(t, p.name), "app", "default")
	if js == nil || js.Last == nil || js.Last.Status != "failed" || !strings.Contains(js.Last.Error, "cancelled because the sidecar is stopping") {
		t.Errorf("the cancelled run: %+v", js.Last)
	}
}

// backupInMidStream starts `docker backup run` of the app through the sidecar and returns
// once the app is stopped and its artifact is being written under dir. The channel gives the
// plugin's exit.
func backupInMidStream(t *testing.T, p *project, app, dir string) <-chan error {
	t.Helper()
	run := exec.Command("docker", "backup", "run", "app", "--project", p.name)
	run.Env = append(run.Environ(), "DOCKER_CONFIG="+dockerConfig)
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for listedRunning(t, app) || len(tempFiles(t, dir)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the backup ended (%v) before it was seen in mid-stream:\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw the app stopped with an artifact being written:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done
}

// listedRunning reports whether the container is running, from the container list: unlike
// docker inspect, the list does not wait for the container's lock, which the Engine holds
// for the whole of an archive copy (a volume backup or restore).
func listedRunning(t *testing.T, name string) bool {
	t.Helper()
	return strings.TrimSpace(docker(t, "ps", "-q", "--filter", "name=^"+name+"$", "--filter", "status=running")) != ""
}
