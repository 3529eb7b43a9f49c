package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/verify"
)

// verifyCmd runs `docker backup verify ARGS` and returns stdout, stderr and the exit code.
func verifyCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return verifyCmdEnv(t, nil, args...)
}

// verifyCmdEnv is verifyCmd with more environment.
func verifyCmdEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	out, stderr, err := dockerCmd(env, append([]string{"backup", "verify"}, args...)...)
	if strings.Contains(stderr, "panic:") {
		t.Fatalf("docker backup verify crashed:\n%s", stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, stderr, 0
	case errors.As(err, &ee):
		return out, stderr, ee.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

// verifyJSON verifies with --format json and decodes the report; it fails the test unless
// the exit code is want.
func verifyJSON(t *testing.T, want int, args ...string) verify.Report {
	t.Helper()
	r, _ := verifyJSONEnv(t, nil, want, args...)
	return r
}

// verifyJSONEnv is verifyJSON with more environment; it returns the stderr too.
func verifyJSONEnv(t *testing.T, env []string, want int, args ...string) (verify.Report, string) {
	t.Helper()
	out, stderr, code := verifyCmdEnv(t, env, append(args, "--format", "json")...)
	if code != want {
		t.Fatalf("verify %v exited %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, stderr)
	}
	var r verify.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, out)
	}
	return r, stderr
}

// verifyDataPaths are the ways a verify restores and counts a volume backup, and what its
// output says of each.
var verifyDataPaths = []struct {
	env, says string
	times     int // said (for the restore, and for the count)
}{
	{"DOCKER_BACKUP_WORKER=on", "Volume data path: a worker container beside the data", 2},
	{"DOCKER_BACKUP_WORKER=off", "Volume data path: the Engine's archive API", 1},
}

// check returns the report's check of that name.
func check(t *testing.T, r verify.Report, name string) verify.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the report has no check %q: %+v", name, r.Checks)
	return verify.Check{}
}

// noScratchLeft fails the test when a scratch container or volume of the project remains.
func noScratchLeft(t *testing.T, p *project, service string) {
	t.Helper()
	filter := "label=org.docker-backup.scratch.service=" + p.name + "/" + service
	if out := strings.TrimSpace(docker(t, "ps", "-aq", "--filter", filter)); out != "" {
		t.Errorf("scratch containers left behind: %s", out)
	}
	if out := strings.TrimSpace(docker(t, "volume", "ls", "-q", "--filter", filter)); out != "" {
		t.Errorf("scratch volumes left behind: %s", out)
	}
}

// started is the container's start time: unchanged means it was never stopped.
func started(t *testing.T, container string) string {
	return strings.TrimSpace(docker(t, "inspect", "--format", "{{.State.StartedAt}} {{.State.Running}}", container))
}

func TestVerifyPostgres(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 3)
	before, since := db.checksums(), started(t, db.container)
	dir := t.TempDir()
	backup(t, "run", "db", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	if m.Contents == nil || m.Contents.Tables["public.pgbench_accounts"] != 300000 || m.Contents.Tables["public.odd"] != 4 {
		t.Fatalf("the manifest does not record the rows of each table: %+v", m.Contents)
	}

	out, stderr, code := verifyCmd(t, m.Artifact, "--from", dir)
	if code != 0 {
		t.Fatalf("verify exited %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	mustContain(t, out, "rows public.pgbench_accounts", "300000", "PASS")
	r := verifyJSON(t, 0, "latest", "--from", dir, "--service", "db", "-p", p.name)
	if !r.Passed || r.Backup != m.Artifact || r.Strategy != "postgres" {
		t.Fatalf("report: %+v", r)
	}
	for table, rows := range m.Contents.Tables {
		if c := check(t, r, "rows "+table); !c.Passed || c.Found != c.Expected || c.Expected != itoa(rows) {
			t.Errorf("check of %s: %+v", table, c)
		}
	}
	// The service was only read: same data, never stopped; nothing of the scratch copy is left.
	if after := db.checksums(); !equalMaps(after, before) || started(t, db.container) != since {
		t.Errorf("verify touched the service")
	}
	noScratchLeft(t, p, "db")

	// A dump cut short before it was compressed and hashed: its checksum is consistent and
	// it restores, but it holds only the tables before the cut. It must fail.
	raw := decompress(t, filepath.Join(dir, m.Artifact))
	cut := bytes.Index(raw, []byte("COPY public.pgbench_accounts"))
	if cut < 0 {
		t.Fatal("no COPY block of pgbench_accounts in the dump")
	}
	cut += bytes.Index(raw[cut:], []byte("\n\\.\n")) + len("\n\\.\n")
	bad := craft(t, dir, crafted{project: p.name, service: "db", strategy: "postgres", ext: "sql", raw: raw[:cut], key: pluginKey(t),
		source: m.Source, contents: m.Contents, image: m.Image, imageID: m.ImageID})
	out, stderr, code = verifyCmd(t, bad, "--from", dir)
	if code != 4 {
		t.Fatalf("verify of a truncated dump exited %d, want 4\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	mustContain(t, out, "FAIL")
	r = verifyJSON(t, 4, bad, "--from", dir)
	if c := check(t, r, "restore"); !c.Passed {
		t.Fatalf("the truncated dump should restore (it was cut between statements): %+v", c)
	}
	failed := 0
	for _, c := range r.Checks {
		if !c.Passed {
			failed++
			if !strings.HasPrefix(c.Name, "rows ") || c.Found != "0" {
				t.Errorf("unexpected failed check %+v", c)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no check failed")
	}
	noScratchLeft(t, p, "db")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func decompress(t *testing.T, file string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := artifact.Zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyMariaDB(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startMariaDB(t, p)
	db.sql(mariaFill)
	dir := t.TempDir()
	backup(t, "run", "db", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	if m.Contents == nil || m.Contents.Tables["shop.items"] != 5003 || m.Contents.Tables["analytics.hits"] != 2 {
		t.Fatalf("the manifest does not record the rows of each table: %+v", m.Contents)
	}
	r := verifyJSON(t, 0, m.Artifact, "--from", dir)
	if c := check(t, r, "rows shop.items"); !c.Passed || c.Found != "5003" {
		t.Errorf("shop.items: %+v", c)
	}
	if c := check(t, r, "tables"); !c.Passed || c.Found != "3" {
		t.Errorf("tables: %+v", c)
	}
	noScratchLeft(t, p, "db")
}

func TestVerifyRedis(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	s := startRedis(t, p, "s3cret pass", false)
	s.fill()
	dir := t.TempDir()
	backup(t, "run", "cache", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	keys := s.do("DBSIZE")
	if m.Contents == nil || itoa(m.Contents.Keys["db0"]) != keys || m.Contents.Keys["db1"] != 2 || m.Contents.Expiring["db0"] != 2 {
		t.Fatalf("the manifest does not record the keys (db0 has %s): %+v", keys, m.Contents)
	}
	r := verifyJSON(t, 0, m.Artifact, "--from", dir)
	if c := check(t, r, "keys db0"); c.Found != keys || !c.Passed {
		t.Errorf("keys db0: %+v", c)
	}
	noScratchLeft(t, p, "cache")
}

func TestVerifySQLite(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.service("app", sqliteImage(t), "-v", p.volume("appdata")+":/data")
	docker(t, "exec", app, "sqlite3", "/data/app.db", sqliteSchema+`CREATE TABLE "odd ""name""" (x); INSERT INTO "odd ""name""" VALUES (1);`)
	dir := t.TempDir()
	backup(t, "run", "app", "--project", p.name, "--strategy", "sqlite", "--database", "/data/app.db", "--to", dir)
	m := onlyBackup(t, dir)
	if m.Contents == nil || m.Contents.Tables["notes"] != 20002 || m.Contents.Tables[`odd "name"`] != 1 {
		t.Fatalf("the manifest does not record the rows of each table: %+v", m.Contents)
	}
	r := verifyJSON(t, 0, m.Artifact, "--from", dir)
	if c := check(t, r, "integrity_check"); !c.Passed {
		t.Errorf("integrity_check: %+v", c)
	}
	if c := check(t, r, "rows notes"); c.Found != "20002" {
		t.Errorf("rows notes: %+v", c)
	}
	noScratchLeft(t, p, "app")
}

func TestVerifyVolume(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	p := f.p
	dir := t.TempDir()
	backup(t, "run", "files", "--project", p.name, "--to", dir)
	m := onlyBackup(t, dir)
	if m.Contents == nil || m.Contents.Tree == "" || m.Contents.Files < 15 || m.Contents.Bytes < 200<<20 {
		t.Fatalf("the manifest does not record the tree: %+v", m.Contents)
	}
	// Both data paths restore and count the scratch copy alike.
	for _, dp := range verifyDataPaths {
		r, stderr := verifyJSONEnv(t, []string{dp.env}, 0, m.Artifact, "--from", dir)
		for _, name := range []string{"files", "bytes", "tree digest"} {
			if c := check(t, r, name); !c.Passed {
				t.Errorf("%s: %s: %+v", dp.env, name, c)
			}
		}
		if n := strings.Count(stderr, "Volume data path:"); n != dp.times || strings.Count(stderr, dp.says) != n {
			t.Errorf("%s: the verify's output does not say %q %d times:\n%s", dp.env, dp.says, dp.times, stderr)
		}
		noScratchLeft(t, p, "files")
	}

	// One byte of one file changed before the stream was hashed: consistent, but not the tree
	// the backup saw.
	raw := decompress(t, filepath.Join(dir, m.Artifact))
	i := bytes.Index(raw, []byte("hello\n"))
	if i < 0 {
		t.Fatal("no hello.txt content in the archive")
	}
	raw[i] = 'j'
	bad := craft(t, dir, crafted{project: p.name, service: "files", strategy: "volume", ext: "tar", raw: raw, key: pluginKey(t),
		source: m.Source, contents: m.Contents, image: m.Image, imageID: m.ImageID})
	for _, dp := range verifyDataPaths {
		r, _ := verifyJSONEnv(t, []string{dp.env}, 4, bad, "--from", dir)
		if c := check(t, r, "tree digest"); c.Passed {
			t.Errorf("%s: a changed file gives the same tree digest: %+v", dp.env, c)
		}
		if c := check(t, r, "files"); !c.Passed {
			t.Errorf("%s: files: %+v", dp.env, c)
		}
		noScratchLeft(t, p, "files")
	}
}

// TestVerifyKilled kills the plugin (kill -9) while its scratch copy holds the restored
// backup: the scratch container and its volumes stay behind, and the next verify removes
// them.
func TestVerifyKilled(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 1)
	dir := t.TempDir()
	if _, stderr, err := faultCmd(t, "run", "db", "--project", p.name, "--to", dir); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	m := faultBackups(t, dir)[0]
	proc := startFault(t, "verify-restored", "verify", m.Artifact, "--from", dir)
	proc.waitPoint("verify-restored")
	filter := "label=org.docker-backup.scratch.service=" + p.name + "/db"
	if strings.TrimSpace(docker(t, "ps", "-q", "--filter", filter)) == "" {
		t.Fatal("no scratch container while the verify runs")
	}
	proc.kill(syscall.SIGKILL)
	if strings.TrimSpace(docker(t, "ps", "-aq", "--filter", filter)) == "" {
		t.Fatal("the scratch container is gone although its verify was killed: the test proves nothing")
	}
	// The next verify (of any backup) removes the dead verify's leftovers first.
	out, stderr, err := faultCmd(t, "verify", m.Artifact, "--from", dir)
	if err != nil {
		t.Fatalf("verify after the kill: %v\n%s\n%s", err, out, stderr)
	}
	if !strings.Contains(stderr, "leftover") {
		// Any plugin that starts a scratch or worker container reaps those of dead owners
		// first: a parallel test's plugin may have been quicker.
		t.Logf("the killed verify's scratch container was removed by another plugin process (a parallel test)")
	}
	noScratchLeft(t, p, "db")
	eventually(t, 10*time.Second, "the service still runs", func() error {
		if !running(t, db.container) {
			return errors.New("stopped")
		}
		return nil
	})
}

// TestSidecarVerify: the label docker-backup.verify verifies the job's newest backup on its
// schedule; status and metrics show the result; a backup that does not restore to what it
// recorded fails; the plugin's verify goes through the sidecar.
func TestSidecarVerify(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.verify=@every 3s")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/sub && echo hello > /data/sub/x && seq 1 50000 > /data/numbers")
	secrets := t.TempDir()
	keyFile := filepath.Join(secrets, "signing.key")
	if err := os.WriteFile(keyFile, []byte("the sidecar's signing key, shared with the verify test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := artifact.LoadSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sidecar, backups := startSidecar(t, p, "-v", secrets+":/run/secrets:ro", "-e", "DOCKER_BACKUP_SIGNING_KEY_FILE=/run/secrets/signing.key")
	ip := strings.TrimSpace(docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", sidecar))
	metricsURL := "http://" + ip + ":9090/metrics"

	// Before any backup, the verify cannot run: an error, not a pass.
	lastVerify := func(status control.Outcome) *control.VerifyInfo {
		t.Helper()
		var v *control.VerifyInfo
		eventually(t, time.Minute, "a verify that "+string(status), func() error {
			js := jobStatus(sidecarStatus(t, p.name), "app", "default")
			if js == nil || js.LastVerify == nil || js.LastVerify.Status != status {
				return fmt.Errorf("last verify: %+v", js)
			}
			v = js.LastVerify
			return nil
		})
		return v
	}
	v := lastVerify("error")
	mustContain(t, v.Summary, "no backup")

	backup(t, "run", "app", "--project", p.name)
	v = lastVerify("passed")
	if v.Checks < 4 || v.Key == "" {
		t.Errorf("passed verify: %+v", v)
	}
	labels := `{backup_job="default",project="` + p.name + `",service="app",strategy="volume",target="default"}`
	eventually(t, 30*time.Second, "verify metrics", func() error {
		body := httpGet(t, metricsURL)
		for _, want := range []string{"docker_backup_last_verify_success" + labels + " 1", "docker_backup_verify_duration_seconds" + labels,
			"docker_backup_last_verify_timestamp_seconds" + labels, "docker_backup_last_verify_success_timestamp_seconds" + labels,
			"docker_backup_verify_interval_seconds" + labels + " 3",
			`docker_backup_verifies_total{project="` + p.name + `",result="passed",service="app"}`} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s", want)
			}
		}
		return nil
	})

	// The plugin's verify goes through the sidecar.
	out, stderr, code := verifyCmd(t, "latest", "--service", "app", "-p", p.name)
	if code != 0 {
		t.Fatalf("verify through the sidecar exited %d\n%s\n%s", code, out, stderr)
	}
	mustContain(t, out, "tree digest", "PASS")

	// A newer backup of the job whose content is not what it recorded: the next verify fails.
	dir := volumeDir(t, backups)
	real := manifestFile(t, dir, sidecarBackups(t, p.name, "app")[0].Key)
	raw := decompress(t, filepath.Join(dir, real.Artifact))
	i := bytes.Index(raw, []byte("hello\n"))
	if i < 0 {
		t.Fatal("no content of /data/sub/x in the archive")
	}
	raw[i] = 'j'
	craft(t, dir, crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", raw: raw, key: key, job: "default",
		source: real.Source, contents: real.Contents, image: real.Image, imageID: real.ImageID, created: time.Now().Add(time.Second)})
	v = lastVerify("failed")
	mustContain(t, v.Summary, "tree digest")
	eventually(t, 30*time.Second, "the failed verify's metric", func() error {
		if body := httpGet(t, metricsURL); !strings.Contains(body, "docker_backup_last_verify_success"+labels+" 0") {
			return fmt.Errorf("last_verify_success is not 0")
		}
		return nil
	})
	status := backup(t, "status", "-p", p.name)
	mustContain(t, status, "LAST VERIFY", "failed", "Recent verifies")
	// The service was never stopped, and nothing of the scratch copies is left once the
	// schedule stops.
	docker(t, "stop", sidecar)
	noScratchLeft(t, p, "app")
	if !running(t, app) {
		t.Error("the service was stopped by a verify")
	}
}

// TestSidecarStoppedDuringVerify: `docker stop` of the sidecar (its default grace of 10 s) while
// a scheduled verify is making its scratch copy, or restoring into it with a worker: the
// sidecar exits cleanly having removed every scratch container, worker and scratch volume it
// made, and its next life verifies again. Each round stops it at another moment.
func TestSidecarStoppedDuringVerify(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *", "docker-backup.verify=@every 1s")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/d && for i in $(seq 1 40); do head -c 2000000 /dev/urandom > /data/d/f$i; done")
	sidecar, _ := startSidecar(t, p)
	backup(t, "run", "app", "--project", p.name)
	// Mostly as the restore begins: the worker is being created (the moment that left one behind).
	phases := []string{"creating a scratch copy", "moving the restored files into place", "counting what the scratch copy holds"}
	for range 8 {
		phases = append(phases, "restoring")
	}
	for i, phase := range phases {
		seen := strings.Count(containerLogs(t, sidecar), phase)
		eventually(t, 2*time.Minute, "a verify at "+phase, func() error {
			if strings.Count(containerLogs(t, sidecar), phase) <= seen {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		time.Sleep(time.Duration(i%4*40) * time.Millisecond) // a little further into the phase, or not
		start := time.Now()
		docker(t, "stop", sidecar)
		if code := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.ExitCode}}", sidecar)); code != "0" {
			t.Errorf("round %d (%s): the sidecar exited with %s after %s on docker stop (killed at the end of its grace?):\n%s",
				i, phase, code, time.Since(start).Round(time.Millisecond), tail(containerLogs(t, sidecar), 30))
		}
		t.Logf("round %d (%s): stopped in %s", i, phase, time.Since(start).Round(time.Millisecond))
		noScratchLeft(t, p, "app")
		if t.Failed() {
			t.Fatalf("round %d (%s), stopped in %s; the sidecar's log ends:\n%s", i, phase, time.Since(start).Round(time.Millisecond), tail(containerLogs(t, sidecar), 30))
		}
		docker(t, "start", sidecar)
		waitSidecar(t, sidecar)
	}
	if !running(t, app) {
		t.Error("the service was stopped by a verify")
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
