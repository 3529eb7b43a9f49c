package e2e

import (
	"os"
	"os/exec"
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
