package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// plugin faults: the plugin is killed (SIGKILL) or interrupted (SIGINT) at a fault point of
// a backup or a restore, for every strategy that can run here.

type faultCase struct {
	point string
	sig   syscall.Signal
}

func (f faultCase) name() string {
	if f.sig == syscall.SIGKILL {
		return f.point + "/SIGKILL"
	}
	return f.point + "/SIGINT"
}

// TestFaultPluginBackup: a backup cut at any point stores nothing visible, or — once its
// manifest is written — a complete backup; older backups stay; the service runs again.
func TestFaultPluginBackup(t *testing.T) {
	t.Parallel()
	for _, strat := range subjects {
		for _, fc := range []faultCase{{"backup-stream", syscall.SIGKILL}, {"backup-uploaded", syscall.SIGKILL},
			{"backup-manifest", syscall.SIGKILL}, {"backup-stream", syscall.SIGINT}} {
			t.Run(strat+"/"+fc.name(), func(t *testing.T) {
				t.Parallel()
				p := newProject(t)
				s := newSubject(t, p, strat)
				dir := t.TempDir()
				run := append([]string{"run", s.service, "--project", p.name, "--to", dir}, s.args...)
				if _, stderr, err := faultCmd(t, run...); err != nil {
					t.Fatalf("the first backup: %v\n%s", err, stderr)
				}
				old := faultBackups(t, dir)[0].Artifact
				before := s.state()

				proc := startFault(t, fc.point, run...)
				proc.waitPoint(fc.point)
				code := proc.kill(fc.sig)
				if fc.sig == syscall.SIGINT {
					if code == 0 {
						t.Errorf("an interrupted backup exited 0:\n%s", proc.err.String())
					}
					mustContain(t, proc.err.String(), "Interrupted", "nothing was stored")
				}
				if after := s.waitState(t); after != before {
					t.Errorf("the backup changed the service's data:\n%s", diffLines(before, after))
				}
				ms := checkTarget(t, dir, []string{old}, fc.point == "backup-uploaded" && fc.sig == syscall.SIGKILL)
				want := 1
				if fc.point == "backup-manifest" {
					want = 2 // its manifest was written: a complete backup
				}
				if len(ms) != want {
					t.Errorf("%d backups listed, want %d", len(ms), want)
				}
				// The next backup works.
				if _, stderr, err := faultCmd(t, run...); err != nil {
					t.Fatalf("the backup after the fault: %v\n%s", err, stderr)
				}
				if n := len(checkTarget(t, dir, []string{old}, fc.point == "backup-uploaded" && fc.sig == syscall.SIGKILL)); n != want+1 {
					t.Errorf("%d backups after the next one, want %d", n, want+1)
				}
			})
		}
	}
}

// TestFaultPluginRestore: a restore cut before it touches anything changes nothing; cut in
// the middle, PostgreSQL rolls back and SQLite and Redis keep their files (the new ones are
// swapped in only when complete), while MySQL and volumes may be partly restored — said so
// by exit code 3; cut after, the backup is restored. The service runs again in every case.
func TestFaultPluginRestore(t *testing.T) {
	t.Parallel()
	for _, strat := range subjects {
		for _, fc := range []faultCase{{"restore-verified", syscall.SIGKILL}, {"restore-stream", syscall.SIGKILL},
			{"restore-stream", syscall.SIGINT}, {"restore-applied", syscall.SIGKILL}} {
			t.Run(strat+"/"+fc.name(), func(t *testing.T) {
				t.Parallel()
				p := newProject(t)
				s := newSubject(t, p, strat)
				dir := t.TempDir()
				if _, stderr, err := faultCmd(t, append([]string{"run", s.service, "--project", p.name, "--to", dir}, s.args...)...); err != nil {
					t.Fatalf("backup: %v\n%s", err, stderr)
				}
				key := faultBackups(t, dir)[0].Artifact
				backedUp := s.state()
				s.change()
				changed := s.waitState(t)
				if changed == backedUp {
					t.Fatal("the change changed nothing")
				}
				restore := []string{"restore", key, "--from", dir, "--to", s.service, "--project", p.name, "--yes"}
				proc := startFault(t, fc.point, restore...)
				proc.waitPoint(fc.point)
				code := proc.kill(fc.sig)
				after := s.waitState(t)
				switch {
				case fc.point == "restore-verified":
					if after != changed {
						t.Errorf("a restore stopped before it began changed the data:\n%s", diffLines(changed, after))
					}
				case fc.point == "restore-applied":
					if after != backedUp {
						t.Errorf("a restore stopped after it was applied did not restore the backup:\n%s", diffLines(backedUp, after))
					}
				case s.atomic:
					if after != changed {
						t.Errorf("an interrupted %s restore left the data changed (it must be as before):\n%s", strat, diffLines(changed, after))
					}
					if fc.sig == syscall.SIGINT && (code == 0 || code == exitPartialCode) {
						t.Errorf("exit code %d, want 1:\n%s", code, proc.err.String())
					}
				default:
					// Not undoable: whatever it left, it says so.
					if fc.sig == syscall.SIGINT {
						if code != exitPartialCode {
							t.Errorf("exit code %d, want %d (partly restored):\n%s", code, exitPartialCode, proc.err.String())
						}
						mustContain(t, proc.err.String(), "may be partly restored")
					}
				}
				checkTarget(t, dir, []string{key}, false)
				// Restoring again brings the backup back.
				if _, stderr, err := faultCmd(t, restore...); err != nil {
					t.Fatalf("restore after the fault: %v\n%s", err, stderr)
				}
				if again := s.waitState(t); again != backedUp {
					t.Errorf("the restore after the fault:\n%s", diffLines(backedUp, again))
				}
				if strings.Contains(proc.err.String(), "panic") {
					t.Errorf("the plugin panicked:\n%s", proc.err.String())
				}
			})
		}
	}
}

// exitPartialCode is the plugin's exit code for a restore that may have left the service
// partly restored.
const exitPartialCode = 3

// TestFaultWatchdogRetries: the plugin is killed (SIGKILL) while a service it stopped for a
// backup is down, and the service cannot start at once (another process took its published
// port): the watchdog tries again with backoff, and starts it once the port is free.
func TestFaultWatchdogRetries(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	p := newProject(t)
	app := p.service("app", plainImage, append([]string{"-p", addr + ":" + port, "-v", p.volume("data") + ":/data"}, idle...)...)
	id := strings.TrimSpace(docker(t, "inspect", "-f", "{{.Id}}", app))
	docker(t, "exec", app, "sh", "-c", "head -c 4000000 /dev/urandom > /data/blob") // past the fault point's first MiB
	proc := startFault(t, "backup-stream", "run", "app", "--project", p.name, "--to", t.TempDir(), "--stop", "--strategy", "volume")
	proc.waitPoint("backup-stream")
	if running(t, app) {
		t.Fatal("the service runs during a backup with --stop")
	}
	var hold net.Listener
	eventually(t, 30*time.Second, "taking the service's port", func() (err error) {
		hold, err = net.Listen("tcp", addr)
		return err
	})
	proc.kill(syscall.SIGKILL)
	time.Sleep(4 * time.Second) // the watchdog tries, and fails
	if running(t, app) {
		t.Fatal("the service started while its port was held")
	}
	hold.Close()
	waitRunning(t, app)
	logs, err := os.ReadFile(filepath.Join(faultConfig, "docker-backup", "watchdog.log"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, string(logs), id+" stopped; starting it failed (attempt 2)", id+" stopped: started it again")
}
