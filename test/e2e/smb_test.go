package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/smb"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// A database and a volume go to Samba and come back, on a host that has nothing but the
// server (the project is gone); a second backup adds files and replaces none.
func TestSMBRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	srv := startSamba(t)
	url := srv.url("backups/site-a/")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "smb://backup@"+srv.addr+"/backup/backups/site-a")
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
		t.Errorf("database restored from SMB differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	_, stderr, err := dockerCmd(srv.env(), "backup", "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restoring the volume from SMB: %v\n%s", err, stderr)
	}
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from SMB differs:\n%s", diffLines(tree, got))
	}
	if left := srv.files("backups/site-a"); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// A wrong password is refused as an authentication error naming the variable it came from
// (never the password), with nothing written; a password in the URL is refused unshown; no
// password at all says which variables to set.
func TestSMBLogin(t *testing.T) {
	t.Parallel()
	srv := startSamba(t)
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	url := srv.url("backups")

	wrong := []string{"DOCKER_BACKUP_SMB_PASSWORD=not-" + srv.password}
	stderr := backupFails(t, wrong, "run", "files", "--project", p.name, "--to", url)
	t.Logf("wrong password: %s", stderr)
	mustContain(t, stderr, "authentication failed", `log in "backup"`, "DOCKER_BACKUP_SMB_PASSWORD", "nothing was stored")
	if strings.Contains(stderr, srv.password) {
		t.Error("an error shows the password")
	}
	out, stderr, err := dockerCmd(wrong, "backup", "target", "check", url)
	if err == nil {
		t.Errorf("target check passed with a wrong password:\n%s", out)
	}
	mustContain(t, out+stderr, "FAILED  write", "authentication failed", "not usable")

	stderr = backupFails(t, []string{"DOCKER_BACKUP_SMB_PASSWORD="}, "run", "files", "--project", p.name, "--to", url)
	mustContain(t, stderr, "no password", "DOCKER_BACKUP_SMB_PASSWORD")

	inURL := "smb://backup:" + srv.password + "@" + srv.addr + "/backup/backups"
	stderr = backupFails(t, srv.env(), "run", "files", "--project", p.name, "--to", inURL)
	mustContain(t, stderr, "must not hold a password")
	if strings.Contains(stderr, srv.password) {
		t.Errorf("the refusal shows the URL's password: %s", stderr)
	}
	if files := srv.files(""); len(files) != 0 {
		t.Errorf("written on the server: %q", files)
	}
	out = docker(t, "exec", srv.name, "ls", "-A", "/share")
	if strings.TrimSpace(out) != "" {
		t.Errorf("the share is not empty after refused logins: %s", out)
	}

	// A share the server does not have is named as such.
	stderr = backupFails(t, srv.env(), "run", "files", "--project", p.name, "--to", "smb://backup@"+srv.addr+"/nosuch/backups")
	mustContain(t, stderr, `has no share named "nosuch"`, "nothing was stored")

	// The password from a file (DOCKER_BACKUP_SMB_PASSWORD_FILE) works.
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(srv.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backupWithEnv(t, []string{"DOCKER_BACKUP_SMB_PASSWORD=", "DOCKER_BACKUP_SMB_PASSWORD_FILE=" + pw}, "run", "files", "--project", p.name, "--to", url)
	if files := srv.files("backups"); len(files) != 3 {
		t.Errorf("after a backup with the password from a file: %q", files)
	}
}

// A full disk on the server fails the backup, saying so; the temporary file is removed and
// nothing is listed. The session killed in the middle of an upload fails the backup; its
// temporary file is removed over a new connection, and the older backup still restores.
func TestSMBFullDiskAndLostSession(t *testing.T) {
	t.Parallel()
	srv := startSamba(t, "--tmpfs", "/share/small:size=4m,uid=1000,gid=1000,mode=0755")
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

	// The server's process for the session dies while the upload runs.
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
	if now := srv.files("big"); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("after the killed session: %q, want %q", now, first)
	}
	if got := listed(t, srv.env(), url); len(got) != 1 {
		t.Errorf("listed after the failed backup: %q, want the first one only", got)
	}
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

// The sidecar backs up to an SMB target with a password file of its own
// (DOCKER_BACKUP_TARGET_<NAME>_SMB_PASSWORD_FILE), under the host's name, and its retention
// prunes there.
func TestSMBSidecarRetention(t *testing.T) {
	t.Parallel()
	srv := startSamba(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(srv.password), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=nas")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-v", dir+":/smb:ro", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET_NAS="+srv.url("backups"),
		"-e", "DOCKER_BACKUP_TARGET_NAS_SMB_PASSWORD_FILE=/smb/password")
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

// --limit-upload holds an upload to an SMB server to its rate.
func TestSMBUploadCap(t *testing.T) {
	t.Parallel()
	srv := startSamba(t)
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "smbd", srv.env(), p.name, "blob", srv.url("capped"), srv.url("free"))
	if files := srv.files("capped"); len(files) != 3 {
		t.Errorf("on the server: %q, want the artifact, its chunk list and its manifest", files)
	}
}

// TestSMBContract holds the SMB target to the contract (internal/target/targettest) on Samba,
// and checks what only the real server shows: the rename itself refuses an existing name
// (Puts of one key racing past the first look), and a pinned file replaced on the server's
// disk is refused, never read.
func TestSMBContract(t *testing.T) {
	srv := startSamba(t)
	t.Setenv("E2E_SMB_CONTRACT_SMB_PASSWORD", srv.password)
	n := 0
	open := func(t *testing.T) target.Target {
		n++
		cfg, err := smb.ParseURL(srv.url(fmt.Sprintf("contract/run%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.CredentialsEnv = "E2E_SMB_CONTRACT"
		tg, err := smb.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		return tg
	}
	targettest.Contract(t, open)
	t.Run("RacingPutsReplaceNothing", func(t *testing.T) { racingPuts(t, open(t)) })
	t.Run("PinRefusesAFileReplacedOnTheServer", func(t *testing.T) {
		tg := open(t)
		pinReplacedOnServer(t, srv, tg, fmt.Sprintf("contract/run%d", n))
	})
	t.Run("SweepsWhatAKilledPutLeft", func(t *testing.T) {
		tg := open(t)
		sweeps(t, srv, tg, fmt.Sprintf("contract/run%d", n))
	})
	t.Run("RedialsALostSession", func(t *testing.T) {
		tg := open(t)
		ctx := context.Background()
		if _, err := tg.Put(ctx, "k", strings.NewReader("before")); err != nil {
			t.Fatal(err)
		}
		srv.killSessions()
		if got := targettest.Read(t, tg, "k"); string(got) != "before" {
			t.Errorf("after the session was killed: %q", got)
		}
		if _, err := tg.Put(ctx, "k2", strings.NewReader("after")); err != nil {
			t.Errorf("a Put after the session was killed: %v", err)
		}
	})
}

// sweeps leaves a temporary file as a Put killed mid-upload does (a hidden name beside its
// key, on the server's disk): never listed, kept by RemoveStale while young, removed by it
// once old, and by RemoveIncomplete of its key.
func sweeps(t *testing.T, srv *smbServer, tg target.Target, dir string) {
	ctx := context.Background()
	if _, err := tg.Put(ctx, "svc/a", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	leave := func(name string) {
		docker(t, "exec", srv.name, "sh", "-c", `head -c 100000 /dev/urandom > "$1" && chown backup: "$1"`, "sh", "/share/"+dir+"/svc/"+name)
	}
	leave(".b" + target.TempMarker + "killed1")
	leave(".c" + target.TempMarker + "killed2")
	if keys := targettest.Keys(t, tg, ""); strings.Join(keys, " ") != "svc/a" {
		t.Errorf("listed %q, want svc/a alone", keys)
	}
	removed, err := target.RemoveStale(ctx, tg, "svc/", time.Now().Add(-time.Hour))
	if err != nil || len(removed) != 0 {
		t.Errorf("young leftovers: removed %q, %v", removed, err)
	}
	if err := target.RemoveIncomplete(ctx, tg, "svc/b"); err != nil {
		t.Fatal(err)
	}
	if left := srv.files(dir + "/svc"); len(left) != 2 {
		t.Errorf("after RemoveIncomplete of svc/b: %q", left)
	}
	removed, err = target.RemoveStale(ctx, tg, "svc/", time.Now().Add(time.Hour))
	if err != nil || strings.Join(removed, " ") != "svc/.c"+target.TempMarker+"killed2" {
		t.Errorf("old leftovers: removed %q, %v", removed, err)
	}
	if left := srv.files(dir + "/svc"); len(left) != 1 || !strings.HasPrefix(left[0], "a|") {
		t.Errorf("after the sweep: %q", left)
	}
}

// racingPuts puts one key from many targets (connections) at once: one wins, every other
// fails with ErrExist, and the file holds the winner's bytes.
func racingPuts(t *testing.T, first target.Target) {
	ctx := context.Background()
	const racers = 8
	cfg := first.(*smb.Target).Config()
	var wg sync.WaitGroup
	errs := make([]error, racers)
	bodies := make([][]byte, racers)
	for i := range racers {
		bodies[i] = targettest.Payload(t, 2<<20)
		tg, err := smb.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tg.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = tg.Put(ctx, "race/k", bytes.NewReader(bodies[i]))
		}()
	}
	wg.Wait()
	winner, renames := -1, 0
	for i, err := range errs {
		if err != nil && strings.Contains(err.Error(), "refused to rename onto it") {
			renames++
		}
		switch {
		case err == nil && winner >= 0:
			t.Errorf("two Puts of one key succeeded (%d and %d)", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, target.ErrExist):
			t.Errorf("a losing Put failed with %v, want ErrExist", err)
		}
	}
	if winner < 0 {
		t.Fatal("no Put succeeded")
	}
	// The racers passed the first look together: the server's rename refused the losers.
	t.Logf("%d of %d losers refused by the rename itself", renames, racers-1)
	if renames == 0 {
		t.Error("no Put reached the rename: the race did not test it")
	}
	if got := targettest.Read(t, first, "race/k"); !bytes.Equal(got, bodies[winner]) {
		t.Error("the file does not hold the winner's bytes")
	}
	if keys := targettest.Keys(t, first, "race/"); len(keys) != 1 {
		t.Errorf("listed %q", keys)
	}
}

// pinReplacedOnServer replaces a pinned file on the server's own disk (as another client
// would, deleting and writing anew): the pin's reads fail with ErrChanged.
func pinReplacedOnServer(t *testing.T, srv *smbServer, tg target.Target, dir string) {
	ctx := context.Background()
	body := targettest.Payload(t, 1<<20)
	if _, err := tg.Put(ctx, "p/b", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	p, err := target.Pin(ctx, tg, "p/b")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rc, err := p.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("pinned read: %d bytes, %v", len(got), err)
	}
	f := "/share/" + dir + "/p/b"
	docker(t, "exec", srv.name, "sh", "-c", `head -c 1048576 /dev/urandom > "$1.new" && chown backup: "$1.new" && mv -f "$1.new" "$1"`, "sh", f)
	rc, err = p.Open(ctx)
	if err == nil {
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) {
			t.Fatal("a pinned read gave the bytes that replaced the file")
		}
		return
	}
	if !errors.Is(err, target.ErrChanged) {
		t.Errorf("a pinned read of a replaced file failed with %v, want ErrChanged", err)
	}
	t.Logf("replaced on the server: %v", err)
}

// A server that requires signing and encryption (SMB3): the target negotiates both, and
// smbstatus shows its session encrypted and signed.
func TestSMBEncryptionRequired(t *testing.T) {
	t.Parallel()
	srv := startSamba(t, "-e", "SMB_ENCRYPT=required", "-e", "SMB_SIGNING=mandatory")
	cfg, err := smb.ParseURL(srv.url("sealed"))
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(srv.password), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "E2E_SMB_SEALED_" + strings.ToUpper(strings.TrimPrefix(srv.name, "e2e-smb-"))
	// A variable of this test's own (t.Setenv is not for parallel tests).
	if err := os.Setenv(cfg.CredentialsEnv+"_SMB_PASSWORD_FILE", pw); err != nil {
		t.Fatal(err)
	}
	defer os.Unsetenv(cfg.CredentialsEnv + "_SMB_PASSWORD_FILE")
	tg, err := smb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	ctx := context.Background()
	body := targettest.Payload(t, 3<<20)
	if _, err := tg.Put(ctx, "a/b", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if got := targettest.Read(t, tg, "a/b"); !bytes.Equal(got, body) {
		t.Error("read back other bytes")
	}
	status := docker(t, "exec", srv.name, "smbstatus", "-b")
	t.Logf("smbstatus -b:\n%s", status)
	mustContain(t, status, "SMB3_11", "AES-")
	if srv.sha256("sealed/a/b") == "" {
		t.Error("no file on the server")
	}
}

// The plugin killed (SIGKILL) in the middle of an upload to SMB: its temporary file stays on
// the share, hidden; nothing new is listed, the older backup is intact and restores, and the
// next backup goes through (the leftover is swept once old: SweepsWhatAKilledPutLeft).
func TestSMBPluginKilledMidUpload(t *testing.T) {
	srv := startSamba(t)
	t.Setenv("DOCKER_BACKUP_SMB_PASSWORD", srv.password)
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "head -c 4000000 /dev/urandom > /data/blob") // past the fault point's first MiB
	url := srv.url("killed")
	run := []string{"run", "files", "--project", p.name, "--to", url, "--strategy", "volume"}
	if _, stderr, err := faultCmd(t, run...); err != nil {
		t.Fatalf("the first backup: %v\n%s", err, stderr)
	}
	first := srv.files("killed")
	proc := startFault(t, "backup-stream", run...)
	proc.waitPoint("backup-stream")
	temporaries := func() (n int) {
		for _, f := range srv.files("killed") {
			if strings.Contains(f, "/.") && strings.Contains(f, target.TempMarker) {
				n++
			}
		}
		return n
	}
	if temporaries() != 1 {
		t.Fatalf("no temporary file on the share while the upload runs: %q", srv.files("killed"))
	}
	proc.kill(syscall.SIGKILL)
	if temporaries() != 1 {
		t.Errorf("after the kill: %q, want the temporary file left", srv.files("killed"))
	}
	for _, line := range first {
		if !contains(srv.files("killed"), line) {
			t.Errorf("%s changed or went", line)
		}
	}
	if got := faultBackups(t, url); len(got) != 1 {
		t.Errorf("listed %d backups after the kill, want the first one", len(got))
	}
	if _, stderr, err := faultCmd(t, run...); err != nil {
		t.Fatalf("the backup after the kill: %v\n%s", err, stderr)
	}
	if got := faultBackups(t, url); len(got) != 2 {
		t.Errorf("listed %d backups, want 2", len(got))
	}
	if _, stderr, err := faultCmd(t, "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes"); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
}
