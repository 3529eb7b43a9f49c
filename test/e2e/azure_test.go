package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// TestAzureContract holds the Azure target to the contract (internal/target/targettest)
// against Azurite.
func TestAzureContract(t *testing.T) {
	a := startAzurite(t)
	a.container("contract")
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		return a.open(fmt.Sprintf("contract/run%d", n))
	})
}

// A database and a volume go to Azurite and come back, on a host that has nothing but the
// storage account (the project is gone); a second backup adds blobs and replaces none.
func TestAzureRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("backups")
	url := a.url("backups/site-a")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, a.env(), "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, a.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "azure://backups/site-a")
	out = backupWithEnv(t, append(a.env(), "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "via      a worker container beside the data")
	first := a.blobs("backups/site-a")
	if len(first) != 6 {
		t.Fatalf("in the container: %q, want 2 artifacts, 2 chunk lists and 2 manifests", first)
	}
	firstDB := ""
	for _, line := range first {
		if name := strings.Split(line, "|")[0]; strings.HasSuffix(name, ".sql.zst") {
			firstDB = name
		}
		if !strings.HasPrefix(line, p.name+"/") {
			t.Errorf("%s: outside the project's prefix", line)
		}
	}
	tg := a.open("backups/site-a")
	firstSum := sha256.Sum256(targettest.Read(t, tg, firstDB))

	backupWithEnv(t, a.env(), "run", "db", "--project", p.name, "--to", url)
	second := a.blobs("backups/site-a")
	if len(second) != 9 {
		t.Errorf("after a second backup: %q, want 9 blobs", second)
	}
	for _, line := range first {
		if !contains(second, line) {
			t.Errorf("%s was replaced or removed by the second backup", line)
		}
	}
	if sha256.Sum256(targettest.Read(t, tg, firstDB)) != firstSum {
		t.Errorf("%s changed", firstDB)
	}

	// Disaster: the project is gone; the storage account alone brings it back.
	p.cleanup()
	listing := backupWithEnv(t, a.env(), "ls", "--from", url)
	mustContain(t, listing, p.name+"/db", p.name+"/files", "postgres", "volume")
	db2 := startPostgres(t, p, "db")
	backupWithEnv(t, a.env(), "restore", "latest", "--from", url, "--to", "db", "--project", p.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored from Azure differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	backupWithEnv(t, a.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from Azure differs:\n%s", diffLines(tree, got))
	}
	if left := a.blobs("backups/site-a"); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// Wrong or missing credentials, a missing container: refused saying which, naming the
// variable and never the key, with nothing written.
func TestAzureRefusals(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("backups")
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	run := func(env []string, url string) string {
		t.Helper()
		return backupFails(t, env, "run", "files", "--project", p.name, "--to", url)
	}
	other := make([]byte, 64)
	_, _ = rand.Read(other)
	wrongKey := base64.StdEncoding.EncodeToString(other)
	wrong := []string{"AZURE_STORAGE_ACCOUNT=" + a.account, "AZURE_STORAGE_KEY=" + wrongKey}
	stderr := run(wrong, a.url("backups"))
	t.Logf("wrong key: %s", stderr)
	mustContain(t, stderr, "authentication failed", "AZURE_STORAGE_KEY", "nothing was stored")
	if strings.Contains(stderr, wrongKey) || strings.Contains(stderr, a.key) {
		t.Error("an error shows the key")
	}
	out, stderr2, err := dockerCmd(wrong, "backup", "target", "check", a.url("backups"))
	if err == nil {
		t.Errorf("target check passed with a wrong key:\n%s", out)
	}
	mustContain(t, out+stderr2, "FAILED  write", "authentication failed", "not usable")

	stderr = run(nil, a.url("backups"))
	t.Logf("no credentials: %s", stderr)
	mustContain(t, stderr, "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN")

	stderr = run(a.env(), a.url("missing/x"))
	t.Logf("missing container: %s", stderr)
	mustContain(t, stderr, `container "missing" does not exist`, "create it first")

	stderr = run(a.env(), "azure://backups/x?endpoint="+a.endpoint()+"&sig=c2VjcmV0")
	mustContain(t, stderr, "must not hold secrets")
	if strings.Contains(stderr, "c2VjcmV0") {
		t.Error("the refusal shows the URL's SAS")
	}
	if blobs := a.blobs("backups"); len(blobs) != 0 {
		t.Errorf("written in the container: %q", blobs)
	}

	// The service down: tried again with backoff, then "cannot reach", naming the endpoint.
	a.kill()
	stderr = run(a.env(), a.url("backups"))
	t.Logf("Azurite down: %s", stderr)
	mustContain(t, stderr, "cannot reach "+a.endpoint(), "nothing was stored")
	if strings.Contains(stderr, a.key) {
		t.Error("an error shows the key")
	}
}

// Two Puts of the same key race past the check that it is free: the conditional commit
// (If-None-Match: *) lets exactly one through, the other gets ErrExist.
func TestAzureConditionalCommit(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("race")
	tg := a.open("race")
	gate := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			body := io.MultiReader(&gated{gate: gate, started: &started}, bytes.NewReader(targettest.Payload(t, 9<<20+i)))
			_, err := tg.Put(context.Background(), "k", body)
			errs <- err
		}()
	}
	started.Wait()
	close(gate)
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("racing Puts: %v and %v, want one success and one ErrExist", e1, e2)
	}
	if err := errors.Join(e1, e2); !errors.Is(err, target.ErrExist) {
		t.Errorf("the losing Put: %v, want ErrExist", err)
	}
	if blobs := a.blobs("race"); len(blobs) != 1 {
		t.Errorf("blobs: %q", blobs)
	}
}

// gated reads nothing until its gate opens, once both racers have passed the existence check
// (Put reads its source only after it).
type gated struct {
	gate    chan struct{}
	started *sync.WaitGroup
	once    sync.Once
}

func (g *gated) Read([]byte) (int, error) {
	g.once.Do(g.started.Done)
	<-g.gate
	return 0, io.EOF
}

// The plugin killed in the middle of an upload: the blocks it staged are never committed, so
// nothing is listed, and the older backup still restores.
func TestAzureInterruptedPut(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("big")
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "head -c 1000000 /dev/urandom > /data/small")
	url := a.url("big")
	backupWithEnv(t, a.env(), "run", "files", "--project", p.name, "--to", url)
	first := a.blobs("big")
	docker(t, "exec", filler, "sh", "-c", "head -c 400000000 /dev/urandom > /data/big")

	cmd := exec.Command("docker", "backup", "run", "files", "--project", p.name, "--to", url)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig), a.env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	before := dirSize(a.dir)
	eventually(t, time.Minute, "blocks staged on Azurite", func() error {
		if dirSize(a.dir) < before+32<<20 {
			return errNotYet
		}
		return nil
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	removeScratch(p.name)
	if now := a.blobs("big"); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("after the killed upload: %q, want %q (nothing of it listed)", now, first)
	}
	if got := listed(t, a.env(), url); len(got) != 1 {
		t.Errorf("listed after the killed backup: %q, want the first one only", got)
	}
	docker(t, "exec", filler, "rm", "/data/big")
	backupWithEnv(t, a.env(), "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	// The key is free for the next backup: a new upload stages blocks of its own.
	backupWithEnv(t, a.env(), "run", "files", "--project", p.name, "--to", url)
	if got := listed(t, a.env(), url); len(got) != 2 {
		t.Errorf("listed after a new backup: %q, want 2", got)
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// The sidecar backs up to an Azure target with credentials of its own
// (DOCKER_BACKUP_TARGET_<NAME>_AZURE_STORAGE_*), under the host's name, and its retention
// prunes there.
func TestAzureSidecarRetention(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("backups")
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=box")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET_BOX="+a.url("backups"),
		"-e", "DOCKER_BACKUP_TARGET_BOX_AZURE_STORAGE_ACCOUNT="+a.account,
		"-e", "DOCKER_BACKUP_TARGET_BOX_AZURE_STORAGE_KEY="+a.key)
	waitRuns(t, p.name, "db", "default", 4, 2*time.Minute)

	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))
	eventually(t, 30*time.Second, "retention in the container", func() error {
		var artifacts []string
		for _, b := range a.blobs("backups") {
			name := strings.Split(b, "|")[0]
			if !strings.HasPrefix(name, host+"/"+p.name+"/db/") {
				t.Errorf("%s is not under the host's prefix %s/", name, host)
			}
			if !strings.HasSuffix(name, ".manifest.json") && !strings.HasSuffix(name, artifact.ChunksSuffix) {
				artifacts = append(artifacts, name)
			}
		}
		if len(artifacts) != 2 {
			return fmt.Errorf("%d artifacts, want 2", len(artifacts))
		}
		return nil
	})
	listing := backupWithEnv(t, a.env(), "ls", "--from", a.url("backups/"+host), "--project", p.name)
	mustContain(t, listing, p.name+"/db")
}

// --limit-upload holds an upload to Azure to its rate: paced by what is sent, block by block
// (a block is buffered whole before it goes).
func TestAzureUploadCap(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("capped")
	a.container("free")
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "Azurite", a.env(), p.name, "blob", a.url("capped"), a.url("free"))
	if blobs := a.blobs("capped"); len(blobs) != 3 {
		t.Errorf("in the container: %q, want the artifact, its chunk list and its manifest", blobs)
	}
}

// Azurite lists blob names in S3's lexical order (UTF-8 bytes) for names beyond ASCII too,
// with one exception, logged: it compares UTF-16 code units, so a character beyond U+FFFF
// (an emoji) sorts before one of U+E000–U+FFFF (fullwidth forms) at the same place.
func TestAzureListOrderUnicode(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("order")
	tg := a.open("order")
	keys := []string{"p/Z", "p/a", "p/é", "p/~", "p/ä/b", "p/a b", "p/a-b", "p/a/b", "p/a.b", "p/ü", "p/中文", "p/\u00ff"}
	astral := []string{"q/\uFF01x", "q/\U0001F600y"}
	for _, k := range append(slices.Clone(keys), astral...) {
		if _, err := tg.Put(context.Background(), k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(keys)
	if got := targettest.Keys(t, tg, "p/"); !slices.Equal(got, keys) {
		t.Errorf("List = %q\nwant   %q", got, keys)
	}
	t.Logf("U+FF01 and U+1F600 listed as %q (UTF-8 byte order: %q)", targettest.Keys(t, tg, "q/"), astral)
}

// A SAS token instead of the account key: one that may read and list but not write is refused
// as a permission, naming its variable; one that may do all a backup needs works.
func TestAzureSASToken(t *testing.T) {
	t.Parallel()
	a := startAzurite(t)
	a.container("backups")
	p := newProject(t)
	p.service("files", pauseImage, "-v", p.volume("data")+":/data")
	url := a.url("backups/sas")
	readOnly := a.sas("backups", "rl")
	stderr := backupFails(t, []string{"AZURE_STORAGE_SAS_TOKEN=" + readOnly}, "run", "files", "--project", p.name, "--to", url)
	t.Logf("a read-only SAS: %s", stderr)
	mustContain(t, stderr, "permission denied", "AZURE_STORAGE_SAS_TOKEN", "nothing was stored")
	if strings.Contains(stderr, "sig=") {
		t.Error("an error shows the SAS token")
	}
	out, _, _ := dockerCmd([]string{"AZURE_STORAGE_SAS_TOKEN=" + readOnly}, "backup", "target", "check", url)
	mustContain(t, out, "FAILED  write", "SAS permissions c and w")
	full := []string{"AZURE_STORAGE_SAS_TOKEN_FILE=" + writeFile(t, "?"+a.sas("backups", "racwdl"))}
	mustContain(t, backupWithEnv(t, full, "target", "check", url), "ready for backups")
	backupWithEnv(t, full, "run", "files", "--project", p.name, "--to", url)
	if got := listed(t, full, url); len(got) != 1 {
		t.Errorf("listed with the SAS: %q", got)
	}
	backupWithEnv(t, full, "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
