package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/rclone"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// The rclone target is tested through rclone's sftp backend against the OpenSSH fixture: a
// remote of a real server, reached through rclone's own packages, configured by a generated
// rclone.conf. Drive, Dropbox and B2 themselves cannot be reached from the test machine.

// rcloneConf writes an rclone.conf naming srv as the remote "box", its key and known_hosts
// file at dir as the process reading it sees them (copies are put in local), and returns the
// file's path in local.
func rcloneConf(t *testing.T, srv *sshdServer, local, dir string) string {
	t.Helper()
	for _, f := range []string{"id_ed25519", "known_hosts"} {
		b, err := os.ReadFile(filepath.Join(srv.keys, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("[box]\ntype = sftp\nhost = 127.0.0.1\nport = %s\nuser = %s\nkey_file = %s/id_ed25519\nknown_hosts_file = %s/known_hosts\n",
		srv.port, srv.user, dir, dir)
	file := filepath.Join(local, "rclone.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// rcloneEnv is what `docker backup` needs to reach srv as the rclone remote "box".
func rcloneEnv(t *testing.T, srv *sshdServer) []string {
	t.Helper()
	dir := t.TempDir()
	return []string{"RCLONE_CONFIG=" + rcloneConf(t, srv, dir, dir), "SSH_AUTH_SOCK="}
}

// A database and a volume go to an rclone remote and come back, on a host that has nothing
// but the remote (the project is gone); a second backup adds files and replaces none.
func TestRcloneRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	env := rcloneEnv(t, srv)
	url := "rclone:box:backups/site-a"

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, env, "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, env, "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, url)
	out = backupWithEnv(t, append(env, "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "via      a worker container beside the data")
	first := srv.files("backups/site-a")
	if len(first) != 6 {
		t.Fatalf("on the server: %q, want 2 artifacts, 2 chunk lists and 2 manifests", first)
	}
	firstDB := ""
	for _, line := range first {
		if !strings.HasPrefix(line, p.name+"/") || strings.Contains(line, "/.") {
			t.Errorf("%s: outside the project's directory, or a temporary file left", line)
		}
		if strings.HasSuffix(strings.Split(line, "|")[0], ".sql.zst") {
			firstDB = strings.Split(line, "|")[0]
		}
	}
	firstSum := srv.sha256("backups/site-a/" + firstDB)

	// A second backup adds its own files; every file of the first is the same file (inode,
	// size) with the same bytes.
	backupWithEnv(t, env, "run", "db", "--project", p.name, "--to", url)
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
	if got := listed(t, env, "rclone:box:/home/backup/backups/site-a", "--service", "db", "--project", p.name); len(got) != 2 {
		t.Errorf("ls of the absolute form shows %q, want the 2 backups of db", got)
	}

	// Disaster: the project is gone; the remote alone brings it back.
	p.cleanup()
	mustContain(t, backupWithEnv(t, env, "ls", "--from", url), p.name+"/db", p.name+"/files", "postgres", "volume")
	db2 := startPostgres(t, p, "db")
	backupWithEnv(t, env, "restore", "latest", "--from", url, "--to", "db", "--project", p.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored through rclone differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	backupWithEnv(t, env, "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored through rclone differs:\n%s", diffLines(tree, got))
	}
	if left := srv.files("backups/site-a"); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// A remote rclone.conf does not name, a missing config file, a connection string (which may
// hold a token) and a backend this build leaves out are refused, saying why; nothing is
// written.
func TestRcloneRefusals(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	env := rcloneEnv(t, srv)
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	run := func(env []string, url string) string {
		t.Helper()
		return backupFails(t, env, "run", "files", "--project", p.name, "--to", url)
	}
	stderr := run(env, "rclone:nope:backups")
	t.Logf("unknown remote: %s", stderr)
	mustContain(t, stderr, `no remote "nope" in the rclone config file`)
	stderr = run([]string{"RCLONE_CONFIG=" + filepath.Join(t.TempDir(), "none.conf"), "SSH_AUTH_SOCK="}, "rclone:box:backups")
	t.Logf("missing config file: %s", stderr)
	mustContain(t, stderr, "none.conf", "named by RCLONE_CONFIG")
	stderr = run(env, "rclone:box,pass=hunter2:backups")
	t.Logf("connection string: %s", stderr)
	mustContain(t, stderr, "not a connection string")
	if strings.Contains(stderr, "hunter2") {
		t.Error("the refusal shows the password")
	}
	conf := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(conf, []byte("[od]\ntype = onedrive\ntoken = {\"access_token\":\"tok-SECRET\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr = run([]string{"RCLONE_CONFIG=" + conf}, "rclone:od:backups")
	t.Logf("a backend left out: %s", stderr)
	mustContain(t, stderr, `of type "onedrive", which this build does not include`)
	if strings.Contains(stderr, "tok-SECRET") {
		t.Error("an error shows the token")
	}
	if files := srv.files(""); len(files) != 0 {
		t.Errorf("written on the server: %q", files)
	}
}

// A session killed in the middle of an upload fails the backup; its temporary object is
// removed over a new connection, nothing more is listed, and the older backup still restores.
func TestRcloneInterruptedPut(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	env := rcloneEnv(t, srv)
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "head -c 1000000 /dev/urandom > /data/small")
	url := "rclone:box:big"
	backupWithEnv(t, env, "run", "files", "--project", p.name, "--to", url)
	first := srv.files("big")
	docker(t, "exec", filler, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big")
	done := make(chan string)
	go func() {
		_, stderr, err := dockerCmd(env, "backup", "run", "files", "--project", p.name, "--to", url)
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
	stderr := <-done
	if stderr == "SUCCEEDED" {
		t.Fatal("the backup succeeded although its session was killed")
	}
	t.Logf("killed session: %s", stderr)
	mustContain(t, stderr, "nothing was stored")
	if now := srv.files("big"); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("after the killed session: %q, want %q", now, first)
	}
	if got := listed(t, env, url); len(got) != 1 {
		t.Errorf("listed after the failed backup: %q, want the first one only", got)
	}
	backupWithEnv(t, env, "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

// The sidecar backs up to an rclone remote with an rclone.conf of its own
// (DOCKER_BACKUP_TARGET_<NAME>_RCLONE_CONFIG), under the host's name, and its retention
// prunes there.
func TestRcloneSidecarRetention(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	dir := t.TempDir()
	rcloneConf(t, srv, dir, "/rclone")
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=box")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-v", dir+":/rclone:ro", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET_BOX=rclone:box:backups",
		"-e", "DOCKER_BACKUP_TARGET_BOX_RCLONE_CONFIG=/rclone/rclone.conf")
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
	mustContain(t, backupWithEnv(t, rcloneEnv(t, srv), "ls", "--from", "rclone:box:backups/"+host, "--project", p.name), p.name+"/db")
}

// --limit-upload holds an upload through rclone's sftp backend to its rate.
func TestRcloneUploadCap(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	env := rcloneEnv(t, srv)
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "rclone to sshd", env, p.name, "blob", "rclone:box:capped", "rclone:box:free")
	if files := srv.files("capped"); len(files) != 3 {
		t.Errorf("on the server: %q, want the artifact, its chunk list and its manifest", files)
	}
}

// TestRcloneContract holds the rclone target, through its sftp backend, to the contract
// against OpenSSH.
func TestRcloneContract(t *testing.T) {
	srv := startSSHD(t)
	dir := t.TempDir()
	conf := rcloneConf(t, srv, dir, dir)
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		cfg, err := rclone.ParseURL(fmt.Sprintf("rclone:box:contract/run%d", n))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConfigFile = conf
		tg, err := rclone.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	})
}
