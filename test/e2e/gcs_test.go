package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/gcs"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// TestGCSContract holds the gs:// target to the contract every target keeps
// (internal/target/targettest), against fake-gcs-server.
func TestGCSContract(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("contract")
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		cfg, err := gcs.ParseURL(srv.url(fmt.Sprintf("contract/run%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ChunkSize = 1 << 20 // several chunks for the contract's 9 MiB object
		tg, err := gcs.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	})
}

// A database and a volume go to the GCS emulator and come back on a host that has nothing
// but the bucket (the project is gone); a second backup adds objects and replaces none.
func TestGCSRoundTripAndDisasterRecovery(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("backups")
	url := srv.url("backups/site-a/")

	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 2)
	original := db.checksums()
	f := newVolumeFixtureIn(t, p)
	tree := f.tree()

	mustContain(t, backupWithEnv(t, srv.env(), "target", "check", url), "ok      write", "ok      list", "ok      read", "ok      delete", "ready for backups")
	out := backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	mustContain(t, out, "gs://backups/site-a at http://"+srv.addr)
	out = backupWithEnv(t, append(srv.env(), "DOCKER_BACKUP_WORKER=on"), "run", "files", "--project", p.name, "--to", url)
	mustContain(t, out, "via      a worker container beside the data")
	first := srv.names("backups", "")
	if len(first) != 6 {
		t.Fatalf("in the bucket: %q, want 2 artifacts, 2 chunk lists and 2 manifests", first)
	}
	for _, line := range first {
		if !strings.HasPrefix(line, "site-a/"+p.name+"/") {
			t.Errorf("%s: outside the project's prefix", line)
		}
	}

	// A second backup adds its own objects; every object of the first is the same
	// generation with the same bytes.
	backupWithEnv(t, srv.env(), "run", "db", "--project", p.name, "--to", url)
	second := srv.names("backups", "")
	if len(second) != 9 {
		t.Errorf("after a second backup: %q, want 9 objects", second)
	}
	for _, line := range first {
		if !contains(second, line) {
			t.Errorf("%s was replaced or removed by the second backup", line)
		}
	}

	// Disaster: the project is gone; the bucket alone brings it back.
	p.cleanup()
	listing := backupWithEnv(t, srv.env(), "ls", "--from", url)
	mustContain(t, listing, p.name+"/db", p.name+"/files", "postgres", "volume")
	if got := listed(t, srv.env(), url, "--service", "db", "--project", p.name); len(got) != 2 {
		t.Errorf("ls shows %q, want the 2 backups of db", got)
	}
	db2 := startPostgres(t, p, "db")
	backupWithEnv(t, srv.env(), "restore", "latest", "--from", url, "--to", "db", "--project", p.name, "--yes")
	if got := db2.checksums(); !equalMaps(got, original) {
		t.Errorf("database restored from GCS differs:\n got %v\nwant %v", got, original)
	}
	f2 := newVolumeFixtureIn(t, p)
	f2.sh("rm -rf /data/* /config/*")
	_, stderr, err := dockerCmd(srv.env(), "backup", "restore", "latest", "--from", url, "--to", "files", "--project", p.name, "--yes")
	if err != nil {
		t.Fatalf("restoring the volume from GCS: %v\n%s", err, stderr)
	}
	if got := f2.tree(); got != tree {
		t.Errorf("volume restored from GCS differs:\n%s", diffLines(tree, got))
	}
	if left := srv.names("backups", ""); len(left) != 9 {
		t.Errorf("after the restores: %q", left)
	}
}

// Credentials that cannot work are refused before anything is stored, naming the variable
// and never showing the key: a key file missing, one that is not a key, and a key the token
// service refuses (invalid_grant, from a token service in the test, as the emulator checks no
// credentials); a missing bucket says to create it.
func TestGCSCredentials(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("backups")
	url := srv.url("backups/x")
	p := newProject(t)
	vol := p.volume("data")
	p.service("files", pauseImage, "-v", vol+":/data")

	dir := t.TempDir()
	malformed := filepath.Join(dir, "malformed.json")
	os.WriteFile(malformed, []byte("-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n"), 0o644)
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	defer tokens.Close()
	refused := gcsKeyFile(t, dir, tokens.URL)
	for file, want := range map[string]string{
		filepath.Join(dir, "missing.json"): "reading the key file GOOGLE_APPLICATION_CREDENTIALS names",
		malformed:                          "is not a JSON key file",
		refused:                            "authentication failed",
	} {
		stderr := backupFails(t, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + file}, "run", "files", "--project", p.name, "--to", url)
		t.Logf("%s: %s", filepath.Base(file), stderr)
		mustContain(t, stderr, want, "GOOGLE_APPLICATION_CREDENTIALS")
		if strings.Contains(stderr, "SECRETMATERIAL") || strings.Contains(stderr, "PRIVATE KEY") {
			t.Errorf("the error shows the key: %s", stderr)
		}
	}
	if left := srv.names("backups", ""); len(left) != 0 {
		t.Errorf("refused credentials stored %q", left)
	}
	stderr := backupFails(t, srv.env(), "run", "files", "--project", p.name, "--to", srv.url("nobucket/x"))
	mustContain(t, stderr, `bucket "nobucket" does not exist`, "create it first")
}

// gcsKeyFile writes a service-account key file whose token service is tokenURI.
func gcsKeyFile(t *testing.T, dir, tokenURI string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "e2e", "private_key_id": "kid",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "backup@e2e.iam.gserviceaccount.com", "token_uri": tokenURI})
	f := filepath.Join(dir, "key.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// The plugin is killed (SIGKILL) in the middle of an upload: its session is left unfinished
// on the server, and nothing of it is listed; the next backup works.
func TestGCSInterruptedPut(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("backups")
	url := srv.url("backups/x")
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 1000000 /dev/urandom > /data/blob.bin")
	args := []string{"backup", "run", "blob", "--project", p.name, "--strategy", "volume", "--paths", "/data", "--to", url}
	backupWithEnv(t, srv.env(), args[1:]...)
	first := srv.names("backups", "")

	docker(t, "exec", blob, "sh", "-c", "head -c 100000000 /dev/urandom > /data/blob.bin")
	cmd := exec.Command(pluginBinary, append(args, "--limit-upload", "10MiB/s")...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig), srv.env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // a 16 MiB chunk or more is sent by then, at 10MiB/s; 100 MB is not
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	t.Logf("killed: %v\n%s", err, stderr.String())
	if err == nil {
		t.Fatal("the backup ended before it was killed: the test proves nothing")
	}
	if now := srv.names("backups", ""); strings.Join(now, " ") != strings.Join(first, " ") {
		t.Errorf("after the killed upload: %q, want %q", now, first)
	}
	if got := listed(t, srv.env(), url); len(got) != 1 {
		t.Errorf("listed after the killed backup: %q, want the first one only", got)
	}
	backupWithEnv(t, srv.env(), args[1:]...)
	if got := listed(t, srv.env(), url); len(got) != 2 {
		t.Errorf("listed after the next backup: %q, want 2", got)
	}
}

// The sidecar backs up to a named gs:// target on the emulator (reached over the host's
// network) with a key file of its own (DOCKER_BACKUP_TARGET_<NAME>_GOOGLE_APPLICATION_CREDENTIALS),
// under the host's name, and its retention prunes there.
func TestGCSSidecarRetention(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("backups")
	// The target's own key file, whose token service (here, in the test) hands out tokens:
	// the emulator checks none, the token service's requests show the key was used.
	var grants atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() == nil && r.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" && r.Form.Get("assertion") != "" {
			grants.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"e2e-token","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	dir := t.TempDir()
	gcsKeyFile(t, dir, tokens.URL)
	p := newProject(t)
	dbc := p.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.target=box")
	docker(t, "exec", dbc, "sh", "-c", "echo hello > /data/f")
	startSidecar(t, p, "--network", "host", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0", "-v", dir+":/gcs:ro",
		"-e", "DOCKER_BACKUP_TARGET_BOX="+srv.url("backups"),
		"-e", "DOCKER_BACKUP_TARGET_BOX_GOOGLE_APPLICATION_CREDENTIALS=/gcs/key.json")
	waitRuns(t, p.name, "db", "default", 4, 2*time.Minute)
	if grants.Load() == 0 {
		t.Error("the sidecar never asked for a token with the key file DOCKER_BACKUP_TARGET_BOX_GOOGLE_APPLICATION_CREDENTIALS names")
	}

	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))
	eventually(t, 30*time.Second, "retention in the bucket", func() error {
		var artifacts []string
		for _, o := range srv.objects("backups", "") {
			if !strings.HasPrefix(o.Name, host+"/"+p.name+"/db/") {
				t.Errorf("%s is not under the host's prefix %s/", o.Name, host)
			}
			if !strings.HasSuffix(o.Name, ".manifest.json") && !strings.HasSuffix(o.Name, artifact.ChunksSuffix) {
				artifacts = append(artifacts, o.Name)
			}
		}
		if len(artifacts) != 2 {
			return errNotYet
		}
		return nil
	})
	mustContain(t, backupWithEnv(t, srv.env(), "ls", "--from", srv.url("backups/"+host), "--project", p.name), p.name+"/db")
}

// --limit-upload holds an upload to GCS to its rate: the target paces each chunk as it sends
// it (target.PacedPutter), not as it fills its buffer. The 50 MB go in one chunk: the emulator
// spends on each chunk time that grows with the upload (50 MB take it 3.6 s uncapped in 4 MiB
// chunks, 1.7 s in 16 MiB, 0.7 s in one), which would be measured instead of the cap.
func TestGCSUploadCap(t *testing.T) {
	t.Parallel()
	srv := startFakeGCS(t)
	srv.bucket("backups")
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "fake-gcs-server", srv.env(), p.name, "blob", srv.url("backups/capped")+"&chunk-size=64MiB", srv.url("backups/free")+"&chunk-size=64MiB")
	if objs := srv.names("backups", "capped/"); len(objs) != 3 {
		t.Errorf("in the bucket: %q, want the artifact, its chunk list and its manifest", objs)
	}
}
