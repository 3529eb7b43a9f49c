package e2e

import (
	"bytes"
	"fmt"
	"net/http"
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
	"github.com/docker-backup/docker-backup/internal/target/targettest"
	"github.com/docker-backup/docker-backup/internal/target/webdav"
)

// A database and a volume go to Apache's mod_dav and come back, on a host that has nothing
// but the server (the project is gone); a second backup adds files and replaces none.
func TestWebDAVRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	srv := startWebDAV(t)
	url := srv.url("backups/site-a/")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "webdav+http://"+srv.http+"/dav/backups/site-a")
	out = backupWithEnv(t, append(srv.env(), "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "via      a worker container beside the data")
	first := srv.files("backups/site-a")
	if len(first) != 6 {
		t.Fatalf("on the server: %q, want 2 artifacts, 2 chunk lists and 2 manifests", first)
	}
	firstDB := ""
	for _, line := range first {
		name := strings.Split(line, "|")[0]
		if !strings.HasPrefix(name, p.name+"/") || strings.Contains(name, "/.") {
			t.Errorf("%s: outside the project's directory, or a temporary file left", line)
		}
		if strings.HasSuffix(name, ".sql.zst") {
			firstDB = name
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

	// Disaster: the project is gone; the server alone brings it back.
	p.cleanup()
	listing := backupWithEnv(t, srv.env(), "ls", "--from", url)
	mustContain(t, listing, p.name+"/db", p.name+"/files", "postgres", "volume")

	db2 := startPostgres(t, p, "db")
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "db", "--project", p.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored from WebDAV differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	_, stderr, err := dockerCmd(srv.env(), "backup", "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restoring the volume from WebDAV: %v\n%s", err, stderr)
	}
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from WebDAV differs:\n%s", diffLines(tree, got))
	}
	if left := srv.files("backups/site-a"); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// A wrong password is refused as authentication, naming the variable, with nothing written.
// Over https the server's self-signed certificate is refused unless its CA is given (?ca=).
func TestWebDAVLoginAndCertificate(t *testing.T) {
	t.Parallel()
	srv := startWebDAV(t)
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	nothingWritten := func(when string) {
		t.Helper()
		if out := docker(t, "exec", srv.name, "ls", "-A", "/srv/dav"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: written on the server: %s", when, out)
		}
	}

	wrong := []string{"DOCKER_BACKUP_WEBDAV_USERNAME=" + srv.user, "DOCKER_BACKUP_WEBDAV_PASSWORD=not-the-password"}
	stderr := backupFails(t, wrong, "run", "files", "--project", p.name, "--to", srv.url("backups"))
	t.Logf("wrong password: %s", stderr)
	mustContain(t, stderr, "authentication failed", `"backup"`, "DOCKER_BACKUP_WEBDAV_PASSWORD", "nothing was stored")
	if strings.Contains(stderr, "not-the-password") || strings.Contains(stderr, srv.password) {
		t.Error("an error shows a password")
	}
	out, stderr, err := dockerCmd(wrong, "backup", "target", "check", srv.url("backups"))
	if err == nil {
		t.Errorf("target check passed with a wrong password:\n%s", out)
	}
	mustContain(t, out+stderr, "FAILED  write", "authentication failed", "not usable")
	stderr = backupFails(t, nil, "run", "files", "--project", p.name, "--to", srv.url("backups"))
	mustContain(t, stderr, "set DOCKER_BACKUP_WEBDAV_USERNAME and DOCKER_BACKUP_WEBDAV_PASSWORD")
	nothingWritten("wrong password")

	// https: refused without the CA, the way to give it said; then with it.
	stderr = backupFails(t, srv.env(), "run", "files", "--project", p.name, "--to", srv.tlsURL("backups", false))
	t.Logf("unknown CA: %s", stderr)
	mustContain(t, stderr, "not signed by a known CA", "?ca=FILE", "nothing was stored")
	nothingWritten("unknown CA")
	url := srv.tlsURL("backups", true)
	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ready for backups")
	out = backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "webdav://"+srv.https+"/dav/backups")
	if files := srv.files("backups"); len(files) != 3 {
		t.Errorf("over https: %q, want the artifact, its chunk list and its manifest", files)
	}
	if got := listed(t, srv.env(), url); len(got) != 1 {
		t.Errorf("listed over https: %q", got)
	}
	// A password in the URL is refused unseen.
	stderr = backupFails(t, nil, "ls", "--from", "webdav+http://backup:"+srv.password+"@"+srv.http+"/dav/backups")
	mustContain(t, stderr, "must not hold a user or password")
	if strings.Contains(stderr, srv.password) {
		t.Error("the refusal shows the password")
	}
}

// A full disk fails the backup, saying so (mod_dav answers 507); nothing is left. The plugin
// killed in the middle of an upload leaves nothing listable (Apache drops the cut body), and
// a temporary file left by an older interrupted backup is swept by the next one.
func TestWebDAVFullDiskAndInterruptedPut(t *testing.T) {
	t.Parallel()
	srv := startWebDAV(t, "--tmpfs", "/srv/dav/small:size=4m,uid=33,gid=33,mode=0700")
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
	mustContain(t, stderr, "no space left on the server", "507", "nothing was stored")
	if now := srv.files("small"); strings.Join(now, " ") != strings.Join(before, " ") {
		t.Errorf("after the failed backup: %q, want %q (no temporary file left)", now, before)
	}
	if got := listed(t, srv.env(), small); len(got) != 1 {
		t.Errorf("listed %q, want the first backup only", got)
	}

	// The plugin is killed while the upload runs.
	url := srv.url("big")
	backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", url)
	first := srv.files("big")
	docker(t, "exec", filler, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big")
	cmd := exec.Command("docker", "backup", "run", "files", "--project", p.name, "--to", url)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig), srv.env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "upload in progress", func() error {
		for _, f := range srv.files("big") {
			if strings.Contains(f, "/.") && strings.Split(f, "|")[1] != "0" {
				return nil
			}
		}
		return errNotYet
	})
	killPlugin(t, cmd.Process.Pid)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the backup succeeded although its plugin was killed:\n%s", out.String())
	}
	eventually(t, 30*time.Second, "the cut upload dropped", func() error {
		if now := srv.files("big"); strings.Join(now, " ") != strings.Join(first, " ") {
			return fmt.Errorf("on the server: %q, want %q", now, first)
		}
		return nil
	})
	if got := listed(t, srv.env(), url); len(got) != 1 {
		t.Errorf("listed after the killed backup: %q, want the first one only", got)
	}

	// A temporary file an interrupted backup left hours ago (the plugin killed between its
	// upload and its move) is swept by the next backup; a young one is left alone.
	dir := "/srv/dav/big/" + p.name + "/files/"
	docker(t, "exec", "-u", "www-data", srv.name, "sh", "-c", "echo x > "+dir+".old"+target.TempMarker+"abc && touch -d '-7 hours' "+dir+".old"+target.TempMarker+"abc && echo y > "+dir+".young"+target.TempMarker+"def")
	docker(t, "exec", filler, "sh", "-c", "rm /data/big")
	backupWithEnv(t, srv.env(), "run", "files", "--project", p.name, "--to", url)
	var hidden []string
	for _, f := range srv.files("big") {
		if strings.Contains(f, "/.") {
			hidden = append(hidden, strings.Split(f, "|")[0])
		}
	}
	if want := p.name + "/files/.young" + target.TempMarker + "def"; strings.Join(hidden, " ") != want {
		t.Errorf("temporary files after the next backup: %q, want only %s", hidden, want)
	}
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

// killPlugin kills the docker-backup plugin the docker CLI (pid) runs, by its process id.
func killPlugin(t *testing.T, pid int) {
	t.Helper()
	eventually(t, 10*time.Second, "the plugin's process", func() error {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(b)) {
				comm, _ := os.ReadFile("/proc/" + c + "/comm")
				if strings.TrimSpace(string(comm)) == "docker-backup" {
					n, _ := strconv.Atoi(c)
					return syscall.Kill(n, syscall.SIGKILL)
				}
			}
		}
		return errNotYet
	})
}

// The sidecar backs up to a WebDAV target with a user and password of its own
// (DOCKER_BACKUP_TARGET_<NAME>_WEBDAV_*, the password from a file), under the host's name,
// and its retention prunes there.
func TestWebDAVSidecarRetention(t *testing.T) {
	t.Parallel()
	srv := startWebDAV(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(srv.password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=box")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-v", dir+":/webdav:ro", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET_BOX="+srv.url("backups"),
		"-e", "DOCKER_BACKUP_TARGET_BOX_WEBDAV_USERNAME="+srv.user,
		"-e", "DOCKER_BACKUP_TARGET_BOX_WEBDAV_PASSWORD_FILE=/webdav/password")
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

// --limit-upload holds an upload to a WebDAV server to its rate (paced by what it reads,
// which is what it sends).
func TestWebDAVUploadCap(t *testing.T) {
	t.Parallel()
	srv := startWebDAV(t)
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "Apache mod_dav", srv.env(), p.name, "blob", srv.url("capped"), srv.url("free"))
	if files := srv.files("capped"); len(files) != 3 {
		t.Errorf("on the server: %q, want the artifact, its chunk list and its manifest", files)
	}
}

// TestWebDAVContract holds the WebDAV target to the contract (internal/target/targettest)
// against Apache's mod_dav, over https with the server's CA given.
func TestWebDAVContract(t *testing.T) {
	srv := startWebDAV(t)
	t.Setenv("E2E_CONTRACT_WEBDAV_USERNAME", srv.user)
	t.Setenv("E2E_CONTRACT_WEBDAV_PASSWORD", srv.password)
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		cfg, err := webdav.ParseURL(srv.tlsURL(fmt.Sprintf("contract/run%d", n), true))
		if err != nil {
			t.Fatal(err)
		}
		cfg.CredentialsEnv = "E2E_CONTRACT"
		tg, err := webdav.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	})
	// What the target's MOVE relies on: Apache refuses to replace with Overwrite: F (412).
	t.Run("ServerRefusesOverwrite", func(t *testing.T) {
		do := func(method, path string, body string, header ...string) int {
			req, err := http.NewRequest(method, "http://"+srv.http+"/dav/"+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(srv.user, srv.password)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		do("PUT", "a", "first")
		do("PUT", ".b", "second")
		if code := do("MOVE", ".b", "", "Destination", "http://"+srv.http+"/dav/a", "Overwrite", "F"); code != http.StatusPreconditionFailed {
			t.Errorf("MOVE onto an existing file with Overwrite: F: %d, want 412", code)
		}
		if got := srv.sha256("a"); got != "a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e" {
			t.Errorf("the file was replaced: sha256 %s", got)
		}
	})
}
