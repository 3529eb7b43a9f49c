package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Red team: whoever can write in the SFTP target's directory replaces a backup's artifact by
// a named pipe. A restore of that backup by its name reads the manifest, then opens the
// artifact: Debian's OpenSSH sftp-server blocks in its open (waiting for a writer) before the
// client can see what it is, and the client's open has no deadline: the restore never ends
// (nor would the sidecar's, whose cancellation cannot reach it). The directory target refuses
// a named pipe at a key at once, naming it (guarantee 12).
func TestRedTeamSFTPNamedPipeArtifactHangsRestore(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	url := srv.url("backups/")
	f := newVolumeFixture(t)
	backupWithEnv(t, srv.env(), "run", "files", "--project", f.p.name, "--to", url)
	keys := listed(t, srv.env(), url)
	if len(keys) != 1 {
		t.Fatalf("listed %q, want one backup", keys)
	}
	art := srv.home + "/backups/" + keys[0]
	docker(t, "exec", "-u", srv.user, srv.name, "sh", "-c", `rm "$1" && mkfifo "$1"`, "sh", art)

	// The plugin binary itself (not through the docker CLI), so that a kill ends it.
	cmd := exec.Command(pluginBinary, "backup", "restore", keys[0], "--from", url, "--to", "files", "--project", f.p.name, "--yes")
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig), srv.env()...)
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
		t.Logf("restore of a named pipe: %v\n%s", err, stderr.String())
		if err == nil || !strings.Contains(stderr.String(), "named pipe") {
			t.Errorf("the named pipe is not refused as such")
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
			t.Errorf("a restore of a backup whose artifact is a named pipe on the SFTP server hangs (60 s; it ended on SIGINT):\n%s", stderr.String())
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("a restore of a backup whose artifact is a named pipe on the SFTP server hangs (60 s), and SIGINT does not end it (killed 20 s later):\n%s", stderr.String())
		}
		// Let the server's open go, so that the container stops cleanly.
		_, _, _ = dockerCmd(nil, "exec", srv.name, "sh", "-c", `exec 3<>"$1"; sleep 1`, "sh", art)
	}
}

// Red team: whoever can write in the SFTP target's directory (not the signing key, not the
// rest of the server) replaces the service's directory there by a symbolic link to an archive
// elsewhere on the server that it cannot write: a copy of the same signed backups kept apart
// (an administrator's mirror). The sidecar follows the link: it writes its next backups there
// and its retention deletes the archive's copies. The directory target cannot be led outside
// its directory so (os.Root); on SFTP, promise 7 ("whoever can only add objects … cannot make
// it delete the real ones") does not hold.
func TestRedTeamSFTPSymlinkLeadsRetentionOutside(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	dir := t.TempDir()
	for _, f := range []string{"id_ed25519", "known_hosts"} {
		b, err := os.ReadFile(filepath.Join(srv.keys, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=box")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-v", dir+":/sftp:ro", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET_BOX="+srv.url("backups"),
		"-e", "DOCKER_BACKUP_TARGET_BOX_SFTP_KEY_FILE=/sftp/id_ed25519",
		"-e", "DOCKER_BACKUP_TARGET_BOX_SFTP_KNOWN_HOSTS=/sftp/known_hosts")
	waitRuns(t, p.name, "db", "default", 2, 2*time.Minute)
	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))

	// The archive: the administrator's copy of the backups so far, outside the target's
	// directory, kept forever. Then the attacker's act, inside the target's directory only.
	rel := host + "/" + p.name
	docker(t, "exec", "-u", srv.user, srv.name, "sh", "-c", `set -e; cd "$1"
		mkdir -p "archive/$2" && cp -a "backups/$2/." "archive/$2/"
		mv "backups/$2" "backups/$2.moved" && ln -s "$1/archive/$2" "backups/$2"`, "sh", srv.home, rel)
	archived := srv.files("archive/" + rel)
	if len(archived) < 6 {
		t.Fatalf("the archive holds %q, want at least 2 backups", archived)
	}
	// Fixed: every run refuses the link, naming it; nothing is written or deleted through it.
	failedBefore := sidecarFailedRuns(t, p.name)
	eventually(t, 2*time.Minute, "3 more runs refused", func() error {
		js := jobStatus(sidecarStatus(t, p.name), "db", "default")
		if js == nil || js.Runs["failed"] < failedBefore+3 {
			return fmt.Errorf("runs: %v", js)
		}
		if js.Last == nil || !strings.Contains(js.Last.Error, "symbolic link") {
			return fmt.Errorf("the last run does not name the link: %+v", js.Last)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // a last prune, had there been one

	kept := map[string]bool{}
	for _, f := range srv.files("archive/" + rel) {
		kept[strings.Split(f, "|")[0]] = true
	}
	var deleted, added []string
	for _, f := range archived {
		if name := strings.Split(f, "|")[0]; !kept[name] {
			deleted = append(deleted, name)
		}
		delete(kept, strings.Split(f, "|")[0])
	}
	for name := range kept {
		added = append(added, name)
	}
	if len(added) > 0 {
		t.Errorf("the sidecar wrote outside its target's directory, in the archive: %q", added)
	}
	if len(deleted) > 0 {
		t.Errorf("the sidecar's retention deleted the archive's copies, outside its target's directory: %q", deleted)
	}
}

// sidecarFailedRuns is how many failed runs the db service's default job has had.
func sidecarFailedRuns(t *testing.T, project string) int {
	t.Helper()
	js := jobStatus(sidecarStatus(t, project), "db", "default")
	if js == nil {
		return 0
	}
	return js.Runs["failed"]
}
