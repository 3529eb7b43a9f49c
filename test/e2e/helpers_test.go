package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// project is a compose project made by a test: its containers carry compose labels and are
// removed, with their volumes, when the test ends.
type project struct {
	t    *testing.T
	name string
}

var notName = regexp.MustCompile(`[^a-z0-9]+`)

func newProject(t *testing.T) *project {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "e2e-" + strings.Trim(notName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	p := &project{t: t, name: name + "-" + hex.EncodeToString(b)}
	t.Cleanup(p.cleanup)
	return p
}

func (p *project) cleanup() {
	ids := strings.Fields(docker(p.t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name))
	if len(ids) > 0 {
		_, _ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).CombinedOutput()
	}
	// After the sidecar is gone: one removed while it made a worker leaves that one behind.
	removeScratch(p.name)
	vols := strings.Fields(docker(p.t, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name))
	if len(vols) > 0 {
		_, _ = exec.Command("docker", append([]string{"volume", "rm", "-f"}, vols...)...).CombinedOutput()
	}
}

// removeScratch removes the worker and scratch containers made for a project's services
// that are still there: a test that kills the plugin or the sidecar leaves them for the next
// run to reap, and they hold the project's volumes.
func removeScratch(project string) {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=org.docker-backup.scratch",
		"--format", `{{.ID}} {{.Label "org.docker-backup.scratch.service"}}`).Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		id, service, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(service, project+"/") {
			_, _ = exec.Command("docker", "rm", "-f", "-v", id).CombinedOutput()
		}
	}
}

// volume creates a named volume of the project, as compose names it.
func (p *project) volume(name string) string {
	full := p.name + "_" + name
	docker(p.t, "volume", "create", "--label", "com.docker.compose.project="+p.name, full)
	return full
}

// service starts a container of the project with compose labels and returns its name.
func (p *project) service(service, image string, args ...string) string {
	p.t.Helper()
	name := p.name + "-" + service + "-1"
	run := []string{"run", "-d", "--name", name,
		"--label", "com.docker.compose.project=" + p.name,
		"--label", "com.docker.compose.service=" + service,
		"--label", "com.docker.compose.container-number=1"}
	run = append(run, args...)
	// args holds flags and then the image's command: insert the image after the flags.
	flags, cmd := splitAtCommand(run)
	docker(p.t, append(append(flags, image), cmd...)...)
	return name
}

// splitAtCommand separates docker run flags from a command given after "--".
func splitAtCommand(args []string) ([]string, []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return args, nil
}

// docker runs the docker CLI and returns its stdout, failing the test on error.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := dockerCmd(nil, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func dockerCmd(env []string, args ...string) (string, string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// backup runs `docker backup ARGS` through the docker CLI and fails the test on error.
func backup(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := dockerCmd(nil, append([]string{"backup"}, args...)...)
	if err != nil {
		t.Fatalf("docker backup %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// backupFails runs `docker backup ARGS`, expects it to fail, and returns its stderr.
func backupFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := dockerCmd(env, append([]string{"backup"}, args...)...)
	if err == nil {
		t.Fatalf("docker backup %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		t.Fatalf("docker backup %s crashed:\n%s", strings.Join(args, " "), stderr)
	}
	return stderr
}

// listBackups returns the manifests of the backups `docker backup ls` lists on a backup
// directory, newest first.
func listBackups(t *testing.T, dir string) []artifact.Manifest {
	t.Helper()
	var listed []artifact.Summary
	if err := json.Unmarshal([]byte(backup(t, "ls", "--from", dir, "--format", "json")), &listed); err != nil {
		t.Fatalf("decoding ls output: %v", err)
	}
	var ms []artifact.Manifest
	for _, s := range listed {
		ms = append(ms, *manifestFile(t, dir, s.Key))
	}
	return ms
}

// manifestFile reads the manifest of the backup at key in a backup directory.
func manifestFile(t *testing.T, dir, key string) *artifact.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(artifact.ManifestKey(key))))
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.Unmarshal(b)
	if err != nil {
		t.Fatalf("manifest of %s: %v", key, err)
	}
	return m
}

// onlyBackup asserts there is exactly one backup in dir and returns it.
func onlyBackup(t *testing.T, dir string) artifact.Manifest {
	t.Helper()
	ms := listBackups(t, dir)
	if len(ms) != 1 {
		t.Fatalf("want 1 backup in %s, have %d", dir, len(ms))
	}
	return ms[0]
}

// filesUnder lists every file below dir (hidden ones included) relative to it.
//
// It leaves out _catalog/: a sidecar copies its catalog there on its own schedule (@daily, so
// any test that runs across midnight sees one), which is not what a test about backups counts.
// Tests of the catalog copies read _catalog/ themselves.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() && p == filepath.Join(dir, "_catalog") {
			return filepath.SkipDir
		}
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// eventually retries f until it succeeds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func running(t *testing.T, container string) bool {
	return strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Running}}", container)) == "true"
}

func mustContain(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("output does not mention %q:\n%s", w, s)
		}
	}
}

func fmtList(items []string) string { return fmt.Sprintf("%q", items) }

// writeArtifact stores raw data as a valid, checksummed artifact with its manifest, as if a
// backup had produced it.
func writeArtifact(t *testing.T, dir, project, service, strategyName, ext string, raw []byte) string {
	t.Helper()
	return craft(t, dir, crafted{project: project, service: service, strategy: strategyName, ext: ext, raw: raw, key: pluginKey(t)})
}

// crafted describes an artifact a test writes by hand, as a forger with write access to the
// target would.
type crafted struct {
	project, service, strategy, ext string
	raw                             []byte
	source                          map[string]string
	// key signs the manifest; nil leaves it unsigned.
	key *artifact.SigningKey
	// created is the manifest's date; zero: now.
	created time.Time
	// edit changes the manifest after it was signed.
	edit func(*artifact.Manifest)
	// dir, when set, is the key's directory (another service's, say).
	dir string
	// job names the sidecar job that made it.
	job string
	// contents, image and imageID are recorded as given.
	contents       *artifact.Contents
	image, imageID string
}

// craft stores an artifact and its manifest as a backup would, and returns its key.
func craft(t *testing.T, dir string, c crafted) string {
	t.Helper()
	var buf bytes.Buffer
	zw, err := artifact.Zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(c.raw)
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	if c.created.IsZero() {
		c.created = time.Now()
	}
	key := artifact.Key(artifact.KeyParts{Project: c.project, Service: c.service, Strategy: c.strategy, Ext: c.ext, Compression: artifact.Zstd, At: c.created})
	if c.dir != "" {
		key = c.dir + "/" + key[strings.LastIndex(key, "/")+1:]
	}
	m := artifact.Manifest{FormatVersion: artifact.FormatVersion, Artifact: key, Strategy: c.strategy,
		Project: c.project, Service: c.service, Container: c.project + "-" + c.service + "-1", Image: "crafted",
		CreatedAt: c.created.UTC(), Size: int64(buf.Len()), RawSize: int64(len(c.raw)),
		SHA256: hex.EncodeToString(sum[:]), Compression: artifact.Zstd, Source: c.source, Job: c.job,
		Contents: c.contents, ImageID: c.imageID}
	if c.image != "" {
		m.Image = c.image
	}
	if c.key != nil {
		if err := c.key.Sign(&m); err != nil {
			t.Fatal(err)
		}
	}
	if c.edit != nil {
		c.edit(&m)
	}
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+artifact.ManifestSuffix, body, 0o600); err != nil {
		t.Fatal(err)
	}
	ownLike(t, dir, key)
	return key
}

// ownLike gives the directories and files of key below dir (and key's manifest) the owner of
// dir, as if the owner of the target had written them: the sidecar's image runs as a user of
// its own (65532), and its volume is that user's.
func ownLike(t *testing.T, dir, key string) {
	t.Helper()
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	p := dir
	for _, part := range strings.Split(key, "/") {
		p = filepath.Join(p, part)
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(p+artifact.ManifestSuffix, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
}

// backupWithEnv runs `docker backup ARGS` with extra environment, failing the test on error.
func backupWithEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := dockerCmd(env, append([]string{"backup"}, args...)...)
	if err != nil {
		t.Fatalf("docker backup %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// pluginKey is the signing key of the plugin the tests run (made on first use, as the
// plugin makes it).
func pluginKey(t *testing.T) *artifact.SigningKey {
	t.Helper()
	k, _, err := artifact.LoadOrCreateSigningKey(filepath.Join(dockerConfig, "docker-backup", "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
