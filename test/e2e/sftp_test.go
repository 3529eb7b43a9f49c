package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"golang.org/x/crypto/ssh"
)

// A database and a volume go to OpenSSH's sftp-server and come back, on a host that has
// nothing but the server (the project is gone); a second backup adds files and replaces none.
func TestSFTPRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	url := srv.url("backups/site-a/")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "sftp://backup@"+srv.addr+"/backups/site-a")
	// The volume through a worker container: its stream comes to the plugin over the
	// worker's socket and goes on to the server.
	out = backupWithEnv(t, append(srv.env(), "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "via      a worker container beside the data")
	first := srv.files("backups/site-a")
	if len(first) != 6 {
		t.Fatalf("on the server: %q, want 2 artifacts, 2 chunk lists and 2 manifests", first)
	}
	for _, line := range first {
		if !strings.HasPrefix(line, p.name+"/") || strings.Contains(line, "/.") {
			t.Errorf("%s: outside the project's directory, or a temporary file left", line)
		}
	}
	firstDB := ""
	for _, line := range first {
		if strings.HasSuffix(strings.Split(line, "|")[0], ".sql.zst") {
			firstDB = strings.Split(line, "|")[0]
		}
	}
	firstSum := srv.sha256("backups/site-a/" + firstDB)

	// A second backup adds its own files; every file of the first is the same file (inode,
	// size) with the same bytes.
	backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	second := srv.files("backups/site-a")
	if len(second) != 9 {
		t.Errorf("after a second backup: %q, want 9 files", second)
	}
	for _, line := range first {
		if !contains(second, line) {
			t.Errorf("%s was replaced or removed by the second backup", line)
		}
	}
	if got := srv.sha256("backups/site-a/" + firstDB); got != firstSum {
		t.Errorf("%s changed: %s, was %s", firstDB, got, firstSum)
	}

	// The absolute form names the same directory.
	abs := srv.url("/home/backup/backups/site-a")
	if got := listed(t, srv.env(), abs, "--service", "db", "--project", p.name); len(got) != 2 {
		t.Errorf("ls of the absolute form shows %q, want the 2 backups of db", got)
	}

	// Disaster: the project is gone; the server alone brings it back.
	p.cleanup()
	listing := backupWithEnv(t, srv.env(), "ls", "--from", url)
	mustContain(t, listing, p.name+"/db", p.name+"/files", "postgres", "volume")

	db2 := startPostgres(t, p, "db")
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "db", "--project", p.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored from SFTP differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	_, stderr, err := dockerCmd(srv.env(), "backup", "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restoring the volume from SFTP: %v\n%s", err, stderr)
	}
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from SFTP differs:\n%s", diffLines(tree, got))
	}
	if left := srv.files("backups/site-a"); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// The server's host key is checked before anything is sent: an unknown key is refused with
// its fingerprint and the command that adds it (which then works), a changed one is refused
// naming both fingerprints, and a key the server does not know fails as authentication.
func TestSFTPHostKeyAndLogin(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	url := srv.url("backups")
	run := func(env []string) string {
		t.Helper()
		return backupFails(t, env, "run", "files", "--project", p.name, "--to", url)
	}
	nothingWritten := func(when string) {
		t.Helper()
		if files := srv.files(""); len(files) != 0 {
			t.Errorf("%s: written on the server: %q", when, files)
		}
		out := docker(t, "exec", srv.name, "ls", "-A", srv.home)
		if strings.Contains(out, "backups") {
			t.Errorf("%s: the server has a backups directory: %s", when, out)
		}
	}
	fingerprint := ssh.FingerprintSHA256(srv.hostKey.PublicKey())

	// Unknown: an empty known_hosts file, then none at all.
	if err := os.WriteFile(srv.knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	scan := "ssh-keyscan -p " + srv.port + " 127.0.0.1 >> " + srv.knownHosts
	stderr := run(srv.env())
	t.Logf("unknown host key: %s", stderr)
	mustContain(t, stderr, "host key is not known", fingerprint, scan, "nothing was stored")
	mustContain(t, backupFails(t, srv.env(), "ls", "--from", url), "host key is not known", fingerprint)
	out, stderr, err := dockerCmd(srv.env(), "backup", "target", "check", url)
	if err == nil {
		t.Errorf("target check passed with an unknown host key:\n%s", out)
	}
	mustContain(t, out+stderr, "FAILED  write", "host key is not known", fingerprint, "not usable")
	missing := append(srv.env(), "DOCKER_BACKUP_SFTP_KNOWN_HOSTS="+filepath.Join(srv.keys, "none"))
	mustContain(t, run(missing), "does not exist", fingerprint)
	nothingWritten("unknown host key")
	if logs := containerLogs(t, srv.name); strings.Contains(logs, "Accepted publickey") || strings.Contains(logs, "Failed publickey") {
		t.Errorf("the client tried to log in to a server whose key it does not know:\n%s", logs)
	}

	// The command the error gives adds the key; the backup then goes through.
	if out, err := exec.Command("sh", "-c", scan).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", scan, err, out)
	}
	backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", url)
	stored := srv.files("backups")
	if len(stored) != 3 {
		t.Fatalf("after adding the host key: %q", stored)
	}

	// Changed: the server gets a new host key; the file still holds the old one.
	newKey := srv.rotateHostKey()
	stderr = run(srv.env())
	t.Logf("changed host key: %s", stderr)
	mustContain(t, stderr, "host key has CHANGED", ssh.FingerprintSHA256(newKey.PublicKey()), srv.knownHosts, "ssh-keygen -R '[127.0.0.1]:"+srv.port+"'")
	if strings.Join(srv.files("backups"), " ") != strings.Join(stored, " ") {
		t.Errorf("the server's files changed with a changed host key: %q", srv.files("backups"))
	}
	srv.writeKnownHosts(newKey.PublicKey())

	// A key the server does not know: an authentication error, nothing written.
	loginKey(t, srv.keys, "other_key")
	wrong := append(srv.env(), "DOCKER_BACKUP_SFTP_KEY_FILE="+filepath.Join(srv.keys, "other_key"))
	stderr = run(wrong)
	t.Logf("wrong key: %s", stderr)
	mustContain(t, stderr, "authentication failed", `log in "backup"`, "DOCKER_BACKUP_SFTP_KEY_FILE", "nothing was stored")
	if strings.Contains(stderr, "PRIVATE KEY") {
		t.Error("an error shows the private key")
	}
	if strings.Join(srv.files("backups"), " ") != strings.Join(stored, " ") {
		t.Errorf("the server's files changed with a wrong key: %q", srv.files("backups"))
	}
	// With the right key and the new host key, all is well again.
	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ready for backups")
}

// A full disk on the server fails the backup, saying so; the temporary file is removed and
// nothing is listed. A session killed in the middle of an upload fails the backup; its
// temporary file is removed over a new connection, and the older backup still restores.
func TestSFTPFullDiskAndLostSession(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t, "--tmpfs", "/home/backup/small:size=4m,uid=1000,gid=1000,mode=0700")
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "head -c 1000000 /dev/urandom > /data/small")

	small := srv.url("small")
	backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", small)
	before := srv.files("small")
	docker(t, "exec", filler, "sh", "-c", "head -c 8000000 /dev/urandom > /data/big")
	stderr := backupFails(t, srv.env(), "run", "files", "--project", p.name, "--to", small)
	t.Logf("full disk: %s", stderr)
	mustContain(t, stderr, "no space left on the server", "nothing was stored")
	if now := srv.files("small"); strings.Join(now, " ") != strings.Join(before, " ") {
		t.Errorf("after the failed backup: %q, want %q (no temporary file left)", now, before)
	}
	if got := listed(t, srv.env(), small); len(got) != 1 {
		t.Errorf("listed %q, want the first backup only", got)
	}

	// The server's SFTP session dies while the upload runs.
	url := srv.url("big")
	backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", url)
	first := srv.files("big")
	docker(t, "exec", filler, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big")
	done := make(chan string)
	go func() {
		_, stderr, err := dockerCmd(srv.env(), "backup", "run", "files", "--project", p.name, "--to", url)
		if err == nil {
			stderr = "SUCCEEDED"
		}
		done <- stderr
	}()
	eventually(t, time.Minute, "upload in progress", func() error {
		for _, f := range srv.files("big") {
			if strings.Contains(f, "/.") && strings.Contains(f, ".tmp-") {
				return nil
			}
		}
		return errNotYet
	})
	srv.killSessions()
	stderr = <-done
	if stderr == "SUCCEEDED" {
		t.Fatal("the backup succeeded although its session was killed")
	}
	t.Logf("killed session: %s", stderr)
	mustContain(t, stderr, "nothing was stored")
	// Its temporary file is removed over a new connection.
	if now := srv.files("big"); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("after the killed session: %q, want %q", now, first)
	}
	if got := listed(t, srv.env(), url); len(got) != 1 {
		t.Errorf("listed after the failed backup: %q, want the first one only", got)
	}
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

// The sidecar backs up to an SFTP target with a key and known_hosts file of its own
// (DOCKER_BACKUP_TARGET_<NAME>_SFTP_*), under the host's name, and its retention prunes there.
func TestSFTPSidecarRetention(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	// The sidecar's user reads its own copies of the key and the known_hosts file.
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
	waitRuns(t, p.name, "db", "default", 4, 2*time.Minute)

	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))
	eventually(t, 30*time.Second, "retention on the server", func() error {
		var artifacts []string
		for _, f := range srv.files("backups") {
			name := strings.Split(f, "|")[0]
			if !strings.HasPrefix(name, host+"/"+p.name+"/db/") {
				t.Errorf("%s is not under the host's prefix %s/", name, host)
			}
			if !strings.HasSuffix(name, ".manifest.json") && !strings.HasSuffix(name, artifact.ChunksSuffix) && !strings.Contains(name, "/.") {
				artifacts = append(artifacts, name)
			}
		}
		if len(artifacts) != 2 {
			return errNotYet
		}
		return nil
	})
	listing := backupWithEnv(t, srv.env(), "ls", "--from", srv.url("backups/"+host), "--project", p.name)
	mustContain(t, listing, p.name+"/db")
}

// listed is the artifacts `docker backup ls --from FROM ARGS` lists.
func listed(t *testing.T, env []string, from string, args ...string) []string {
	t.Helper()
	out := backupWithEnv(t, env, append([]string{"ls", "--from", from, "--format", "json"}, args...)...)
	var entries []struct {
		Artifact string `json:"artifact"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("ls --format json: %v\n%s", err, out)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Artifact)
	}
	return keys
}

// --limit-upload holds an upload to an SFTP server to its rate (paced by what it reads, which
// is what it sends).
func TestSFTPUploadCap(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "sshd", srv.env(), p.name, "blob", srv.url("capped"), srv.url("free"))
	if files := srv.files("capped"); len(files) != 3 {
		t.Errorf("on the server: %q, want the artifact, its chunk list and its manifest", files)
	}
}
