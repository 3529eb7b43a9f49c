package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

// sidecar faults: the sidecar is killed (SIGKILL; Docker restarts it) or stopped (docker
// stop) at a fault point of a run or a restore asked for by the plugin.

// startFaultSidecar runs the fault-injection sidecar with DOCKER_BACKUP_FAULT=point; the
// point pauses only when armed (armFault), once.
func startFaultSidecar(t *testing.T, p *project, point string) (string, string) {
	t.Helper()
	return startSidecarImage(t, p, faultSidecarImage(t), "-e", "DOCKER_BACKUP_FAULT="+point,
		"-e", "DOCKER_BACKUP_FAULT_ARMED=/var/lib/docker-backup/fault-armed")
}

// armFault makes the sidecar of p pause at its fault point the next time it passes it.
func armFault(t *testing.T, p *project) {
	t.Helper()
	state := volumeDir(t, p.name+"_backup-state")
	if err := os.WriteFile(filepath.Join(state, "fault-armed"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitSidecarPoint waits until the sidecar's log says it reached the fault point.
func waitSidecarPoint(t *testing.T, sidecar, point string, plugin <-chan error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(containerLogs(t, sidecar), "fault point "+point+" reached") {
		select {
		case err := <-plugin:
			t.Fatalf("the plugin ended (%v) before the sidecar reached %s:\n%s", err, point, containerLogs(t, sidecar))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sidecar never reached %s:\n%s", point, containerLogs(t, sidecar))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pluginInBackground runs `docker backup ARGS` (the normal plugin) and reports its end.
func pluginInBackground(t *testing.T, args ...string) <-chan error {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"backup"}, args...)...)
	cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+dockerConfig)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

// hitSidecar kills the sidecar's process (Docker restarts it) or stops the container (and
// starts it again), then waits until it answers.
func hitSidecar(t *testing.T, sidecar string, kill bool) {
	t.Helper()
	if kill {
		restarts := strings.TrimSpace(docker(t, "inspect", "-f", "{{.RestartCount}}", sidecar))
		pid, err := strconv.Atoi(strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Pid}}", sidecar)))
		if err != nil || pid <= 0 {
			t.Fatalf("sidecar pid: %v", err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Docker restarts it (restart: unless-stopped).
		eventually(t, time.Minute, "the sidecar restarted", func() error {
			if n := strings.TrimSpace(docker(t, "inspect", "-f", "{{.RestartCount}}", sidecar)); n == restarts {
				return fmt.Errorf("not restarted yet")
			}
			return nil
		})
	} else {
		docker(t, "stop", "-t", "60", sidecar)
		if code := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.ExitCode}}", sidecar)); code != "0" {
			t.Errorf("the sidecar exited with %s on docker stop:\n%s", code, containerLogs(t, sidecar))
		}
		docker(t, "start", sidecar)
	}
	waitSidecar(t, sidecar)
}

// TestFaultSidecarBackup: killed or stopped at any point of a run, the sidecar leaves no
// partial backup once it is back (its recovery removes it), keeps older backups, starts what
// it had stopped, records the run as interrupted or failed — or, when the manifest was
// written, as the success it was — and the next run works.
func TestFaultSidecarBackup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		strategy, point string
		kill            bool
	}{
		{"postgres", "backup-stream", true},
		{"postgres", "backup-uploaded", true},
		{"postgres", "backup-manifest", true},
		{"volume", "backup-stream", true},
		{"volume", "backup-stream", false},
		{"redis", "backup-stream", true},
	} {
		how := map[bool]string{true: "SIGKILL", false: "stop"}[tc.kill]
		t.Run(tc.strategy+"/"+tc.point+"/"+how, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			s := newSubject(t, p, tc.strategy)
			sidecar, backups := startFaultSidecar(t, p, tc.point)
			dir := volumeDir(t, backups)
			backup(t, "run", s.service, "--project", p.name) // a one-off backup of the unlabelled service
			old := sidecarBackups(t, p.name, s.service)
			before := s.state()

			// (The worker of a small volume may be done, and removed, before the point.)
			const viaWorker = "volume data path: a worker container beside the data"
			workerRuns := strings.Count(containerLogs(t, sidecar), viaWorker)
			// The sidecar gives the worker its new file on the backups volume to write.
			if wrote := strings.Contains(containerLogs(t, sidecar), "the worker wrote the backup file into the target directory itself"); wrote != (tc.strategy == "volume") {
				t.Errorf("the worker wrote the backup file itself: %v; the sidecar's log:\n%s", wrote, containerLogs(t, sidecar))
			}
			armFault(t, p)
			done := pluginInBackground(t, "run", s.service, "--project", p.name)
			waitSidecarPoint(t, sidecar, tc.point, done)
			if tc.strategy == "volume" && strings.Count(containerLogs(t, sidecar), viaWorker) <= workerRuns {
				t.Errorf("the sidecar's volume backup ran no worker container beside the data:\n%s", containerLogs(t, sidecar))
			}
			hitSidecar(t, sidecar, tc.kill)
			<-done

			if after := s.waitState(t); after != before {
				t.Errorf("the backup changed the data:\n%s", diffLines(before, after))
			}
			var keep []string
			for _, m := range old {
				keep = append(keep, m.Key)
			}
			listed := checkTarget(t, dir, keep, false)
			st := sidecarStatus(t, p.name)
			want, status := 1, control.Interrupted
			if !tc.kill {
				status = control.Failed
			}
			if tc.point == "backup-manifest" {
				want, status = 2, control.Success
			}
			if len(listed) != want {
				t.Errorf("%d backups on the target, want %d", len(listed), want)
			}
			if len(st.OneOff) == 0 || st.OneOff[0].Status != status {
				t.Errorf("the run is recorded as %+v, want %s", st.OneOff, status)
			}
			if len(st.Recovery) != 0 {
				t.Errorf("recovery not finished: %q", st.Recovery)
			}
			// The worker of the killed (or stopped) sidecar's run is gone: ended with its
			// stream and removed by the engine, by the stopping sidecar, or by the restarted
			// one's recovery.
			noWorkersLeft(t, p.name, s.service)
			backup(t, "run", s.service, "--project", p.name)
			if n := len(sidecarBackups(t, p.name, s.service)); n != want+1 {
				t.Errorf("%d backups after the next run, want %d", n, want+1)
			}
		})
	}
}

// TestFaultSidecarStopBackupAndPrune: a labelled job that stops its service and prunes; the
// sidecar killed while the service is stopped starts it again; killed in the middle of a
// prune (a manifest deleted, its artifact not yet), the kept backups are intact and the
// pruned one is never listed again.
func TestFaultSidecarStopBackupAndPrune(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"backup-stream", "prune"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			app := p.volumeService("app", "docker-backup.schedule=0 3 1 1 *", "docker-backup.stop=true", "docker-backup.retention=1")
			docker(t, "exec", app, "sh", "-c", "head -c 3000000 /dev/urandom > /data/blob && echo one > /data/v")
			sidecar, backups := startFaultSidecar(t, p, point)
			dir := volumeDir(t, backups)
			backup(t, "run", "app", "--project", p.name)
			first := sidecarBackups(t, p.name, "app")[0].Key
			// The second run stops the app and streams (backup-stream), or prunes the first
			// backup once it is stored (prune): the sidecar pauses there and is killed.
			armFault(t, p)
			done := pluginInBackground(t, "run", "app", "--project", p.name)
			waitSidecarPoint(t, sidecar, point, done)
			hitSidecar(t, sidecar, true)
			<-done
			waitRunning(t, app)
			listed := checkTarget(t, dir, nil, point == "prune")
			switch {
			case point == "prune" && (len(listed) != 1 || listed[0].Artifact == first):
				t.Errorf("after a prune cut short: %+v, want the second backup only (the first one's manifest was deleted)", listed)
			case point == "backup-stream" && (len(listed) != 1 || listed[0].Artifact != first):
				t.Errorf("backups %+v, want the first one only", listed)
			}
			js := jobStatus(sidecarStatus(t, p.name), "app", "default")
			if js == nil || (point == "backup-stream" && (js.Last == nil || js.Last.Status != "interrupted")) {
				t.Errorf("job after the crash: %+v", js)
			}
			backup(t, "run", "app", "--project", p.name)
			waitRunning(t, app)
		})
	}
}

// TestFaultSidecarRestore: killed or stopped in the middle of a restore, the sidecar leaves
// PostgreSQL as it was (rolled back) and a volume as it was (its restore was staged beside
// the data; the worker removes what it staged) with its container running, records the
// restore as interrupted, not partly restored (it had not begun to change the service), and
// a new restore brings the backup back.
func TestFaultSidecarRestore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		strategy string
		kill     bool
	}{{"postgres", true}, {"postgres", false}, {"volume", true}} {
		how := map[bool]string{true: "SIGKILL", false: "stop"}[tc.kill]
		t.Run(tc.strategy+"/"+how, func(t *testing.T) {
			t.Parallel()
			p := newProject(t)
			s := newSubject(t, p, tc.strategy)
			sidecar, _ := startFaultSidecar(t, p, "restore-stream")
			backup(t, "run", s.service, "--project", p.name)
			key := sidecarBackups(t, p.name, s.service)[0].Key
			backedUp := s.state()
			s.change()
			changed := s.waitState(t)
			armFault(t, p)
			done := pluginInBackground(t, "restore", key, "--to", s.service, "--project", p.name, "--yes")
			waitSidecarPoint(t, sidecar, "restore-stream", done)
			hitSidecar(t, sidecar, tc.kill)
			<-done
			after := s.waitState(t)
			if tc.strategy == "postgres" && after != changed {
				t.Errorf("an interrupted PostgreSQL restore changed the data:\n%s", diffLines(changed, after))
			}
			st := sidecarStatus(t, p.name)
			want := map[bool]control.Outcome{true: control.Interrupted, false: control.Failed}[tc.kill]
			// Cut while its artifact was read (and staged, for the volume): not partial.
			if len(st.Restores) == 0 || st.Restores[0].Status != want || st.Restores[0].Partial {
				t.Errorf("restores in status: %+v, want %s, not partial", st.Restores, want)
			}
			if tc.strategy == "volume" {
				if after != changed {
					t.Errorf("an interrupted staged volume restore changed the data:\n%s", diffLines(changed, after))
				}
			}
			backup(t, "restore", key, "--to", s.service, "--project", p.name, "--yes")
			if again := s.waitState(t); again != backedUp {
				t.Errorf("the restore after the fault:\n%s", diffLines(backedUp, again))
			}
		})
	}
}

var _ = control.PathStatus
