//go:build dist

package dist

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// imageConfig is the part of an image's configuration the tests look at.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant"`
	Created      string `json:"created"`
	Config       struct {
		User         string
		Entrypoint   []string
		Labels       map[string]string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
		Healthcheck  struct{ Test []string }
	} `json:"config"`
}

// archive is a `docker load` archive read: its manifest, configuration and layer's files.
type archive struct {
	tags     []string
	configID string // sha256:… of the configuration
	config   imageConfig
	files    map[string]*tar.Header
	binary   []byte
}

func readArchive(t *testing.T, file string) archive {
	t.Helper()
	blobs := map[string][]byte{}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		blobs[h.Name], _ = io.ReadAll(tr)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(blobs["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("%s: manifest.json %s (%v): want one image of one layer", file, blobs["manifest.json"], err)
	}
	a := archive{tags: manifest[0].RepoTags, configID: manifest[0].Config, files: map[string]*tar.Header{}}
	if sum := sha256.Sum256(blobs[a.configID]); "sha256:"+hex.EncodeToString(sum[:]) != a.configID {
		t.Fatalf("%s: the configuration's digest is not %s", file, a.configID)
	}
	if err := json.Unmarshal(blobs[a.configID], &a.config); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobs[manifest[0].Layers[0]]))
	if err != nil {
		t.Fatalf("%s: the layer: %v", file, err)
	}
	lr := tar.NewReader(zr)
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: the layer: %v", file, err)
		}
		a.files[h.Name] = h
		if h.Name == "sidecar" {
			a.binary, _ = io.ReadAll(lr)
		}
	}
	return a
}

// Each platform's archive loads as docker-backup-sidecar:<version>, for its platform (the
// arm64 archive's configuration says arm64), non-root, with the OCI labels and the
// HEALTHCHECK, and holds a static sidecar binary of that architecture.
func TestImageArchives(t *testing.T) {
	machine := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64, "linux/arm/v7": elf.EM_ARM}
	pins := linkedPins(t, dist("docker-backup-linux-amd64"))
	for _, p := range sidecarPlatforms {
		name := "sidecar-" + strings.ReplaceAll(p, "/", "-") + ".tar"
		a := readArchive(t, dist(name))
		if !slices.Equal(a.tags, []string{"docker-backup-sidecar:" + distVersion}) {
			t.Errorf("%s: tags %q", name, a.tags)
		}
		c := a.config
		if got := strings.TrimSuffix(c.OS+"/"+c.Architecture+"/"+c.Variant, "/"); got != p {
			t.Errorf("%s: the configuration says %s", name, got)
		}
		if c.Config.User != "65532:65532" || !slices.Equal(c.Config.Entrypoint, []string{"/sidecar"}) ||
			!slices.Equal(c.Config.Healthcheck.Test, []string{"CMD", "/sidecar", "healthcheck"}) {
			t.Errorf("%s: user %q, entrypoint %q, healthcheck %q", name, c.Config.User, c.Config.Entrypoint, c.Config.Healthcheck.Test)
		}
		if _, ok := c.Config.ExposedPorts["9090/tcp"]; !ok {
			t.Errorf("%s: no EXPOSE 9090", name)
		}
		if _, ok := c.Config.Volumes["/var/lib/docker-backup"]; !ok {
			t.Errorf("%s: no VOLUME /var/lib/docker-backup", name)
		}
		l := c.Config.Labels
		for _, k := range []string{"version", "revision", "source", "created", "licenses"} {
			if l["org.opencontainers.image."+k] == "" {
				t.Errorf("%s: no label org.opencontainers.image.%s", name, k)
			}
		}
		if l["org.opencontainers.image.version"] != distVersion || l["org.opencontainers.image.created"] != c.Created[:len("2006-01-02T15:04:05")]+"Z" ||
			l["docker-backup.sidecar"] != "true" {
			t.Errorf("%s: labels %v, created %s", name, l, c.Created)
		}
		for _, d := range []string{"var/lib/docker-backup/", "backups/"} {
			if h := a.files[d]; h == nil || h.Uid != 65532 || h.Gid != 65532 {
				t.Errorf("%s: %s is %+v; want a directory of 65532:65532", name, d, h)
			}
		}
		if h := a.files["sidecar"]; h == nil || h.Mode != 0o755 || h.Uid != 0 {
			t.Errorf("%s: /sidecar is %+v", name, h)
		}
		e, err := elf.NewFile(bytes.NewReader(a.binary))
		if err != nil {
			t.Fatalf("%s: /sidecar: %v", name, err)
		}
		if e.Machine != machine[p] {
			t.Errorf("%s: /sidecar is for %s", name, e.Machine)
		}
		for _, prog := range e.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s: /sidecar is dynamically linked", name)
			}
		}
		if !pins.Known(p, a.configID) {
			t.Errorf("%s: the image %s is not pinned in the plugin (%+v)", name, a.configID, pins)
		}
	}
}

// sidecar.oci.tar is one OCI image layout: index.json names the multi-platform index by the
// version; it lists the three platforms' images, the same images as the archives; every
// blob is the digest it is named by; the plugin pins the index and each manifest.
func TestOCILayout(t *testing.T) {
	dir := t.TempDir()
	must(t, "tar", "-xf", dist("sidecar.oci.tar"), "-C", dir)
	blob := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", strings.Replace(d, ":", "/", 1)))
		if err != nil {
			t.Fatalf("blob %s: %v", d, err)
		}
		if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != d {
			t.Fatalf("blob %s has another digest", d)
		}
		return b
	}
	type descriptor struct {
		MediaType   string
		Digest      string
		Platform    *struct{ OS, Architecture, Variant string }
		Annotations map[string]string
	}
	var top struct{ Manifests []descriptor }
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &top); err != nil || len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" ||
		top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != distVersion {
		t.Fatalf("index.json: %s (%v)", raw, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || !strings.Contains(string(b), `"imageLayoutVersion"`) {
		t.Fatalf("oci-layout: %s %v", b, err)
	}
	pins := linkedPins(t, dist("docker-backup-linux-amd64"))
	if top.Manifests[0].Digest != pins.Index {
		t.Errorf("the index is %s, the plugin pins %s", top.Manifests[0].Digest, pins.Index)
	}
	var idx struct{ Manifests []descriptor }
	if err := json.Unmarshal(blob(top.Manifests[0].Digest), &idx); err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range idx.Manifests {
		p := strings.TrimSuffix(m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant, "/")
		platforms = append(platforms, p)
		var man struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		if err := json.Unmarshal(blob(m.Digest), &man); err != nil {
			t.Fatal(err)
		}
		blob(man.Config.Digest)
		for _, l := range man.Layers {
			blob(l.Digest)
		}
		if a := readArchive(t, dist("sidecar-"+strings.ReplaceAll(p, "/", "-")+".tar")); a.configID != man.Config.Digest {
			t.Errorf("%s: the layout's image %s is not the archive's %s", p, man.Config.Digest, a.configID)
		}
		if !pins.Known(p, m.Digest) {
			t.Errorf("%s: the manifest %s is not pinned in the plugin", p, m.Digest)
		}
	}
	if !slices.Equal(platforms, sidecarPlatforms) {
		t.Errorf("the index's platforms: %q, want %q", platforms, sidecarPlatforms)
	}
}

// The amd64 archive loads into the engine as the image the plugin pins, runs `version`, and
// runs as the sidecar (not root, the socket's group added) until healthy.
func TestImageRuns(t *testing.T) {
	tag := "docker-backup-sidecar:" + distVersion
	out := must(t, "docker", "load", "-i", dist("sidecar-linux-amd64.tar"))
	contains(t, "docker load", out, "Loaded image: "+tag)
	// The engine knows it by a digest the plugin pins: its configuration's (Docker's
	// classic image store) or its manifest's (the containerd image store).
	id := strings.TrimSpace(must(t, "docker", "image", "inspect", "-f", "{{.Id}}", tag))
	if !linkedPins(t, dist("docker-backup-linux-amd64")).Known("linux/amd64", id) {
		t.Errorf("the loaded image is %s: not a digest the plugin pins", id)
	}
	out = must(t, "docker", "run", "--rm", "--log-driver", "none", tag, "version")
	contains(t, "the image's version", out, "Version:   "+distVersion, "Platform:  linux/amd64", "Commit:    ")
	if u := strings.TrimSpace(must(t, "docker", "run", "--rm", "--entrypoint", "/sidecar", tag, "version", "--format", "json")); !strings.Contains(u, `"version":"`+distVersion+`"`) {
		t.Errorf("version --format json: %s", u)
	}

	name := fmt.Sprintf("dist-sidecar-%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _, _ = run(nil, "docker", "rm", "-f", "-v", name) })
	must(t, "docker", "run", "-d", "--name", name, "--group-add", socketGroup(t), "-e", "DOCKER_BACKUP_PROJECT="+name,
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "--health-interval", "2s", tag)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		state := strings.TrimSpace(must(t, "docker", "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}} {{.Config.User}}", name))
		if state == "running healthy 65532:65532" {
			break
		}
		if time.Now().After(deadline) || strings.HasPrefix(state, "exited") {
			logs, stderr, _ := run(nil, "docker", "logs", name)
			t.Fatalf("the sidecar is %q, want running, healthy and user 65532:65532; logs:\n%s%s", state, logs, stderr)
		}
		time.Sleep(time.Second)
	}
	// Without the socket's group, it says what to add.
	logs := runUntilExit(t, "-e", "DOCKER_BACKUP_PROJECT="+name, "-v", "/var/run/docker.sock:/var/run/docker.sock", tag)
	contains(t, "the sidecar without the socket's group", logs, "group_add", socketGroup(t))
}

// runUntilExit runs a container to its end (it must fail) and returns its output.
func runUntilExit(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := run(nil, "docker", append([]string{"run", "--rm"}, args...)...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("docker run %s: %v, want a failure\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out + stderr
}

func socketGroup(t *testing.T) string {
	t.Helper()
	info, err := os.Stat("/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(info.Sys().(*syscall.Stat_t).Gid)
}

// The OCI layout pushed to a registry (dist push, as the release workflow does) is pulled by
// the engine by the digest the plugin pins, and by the release's tags; the engine picks its
// platform's image.
func TestRegistryPushAndPull(t *testing.T) {
	reg := exec.Command(distTool, "registry")
	stdout, err := reg.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	reg.Stderr = os.Stderr
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Process.Signal(syscall.SIGTERM); _ = reg.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the registry's address: %v", err)
	}
	repo := strings.TrimSpace(addr) + "/docker-backup/sidecar"
	out := must(t, distTool, "push", "-archive", dist("sidecar.oci.tar"), "-repo", repo, "-version", distVersion)
	pins := linkedPins(t, dist("docker-backup-linux-amd64"))
	if strings.TrimSpace(out) != repo+"@"+pins.Index {
		t.Fatalf("dist push printed %q, want %s@%s", out, repo, pins.Index)
	}
	t.Cleanup(func() {
		ids, _, _ := run(nil, "docker", "image", "ls", "-q", repo)
		for _, r := range append(strings.Fields(ids), repo+"@"+pins.Index) {
			_, _, _ = run(nil, "docker", "image", "rm", "-f", r)
		}
	})
	byDigest := repo + "@" + pins.Index
	must(t, "docker", "pull", "-q", byDigest)
	id := strings.TrimSpace(must(t, "docker", "image", "inspect", "-f", "{{.Id}}", byDigest))
	if !pins.Known("linux/amd64", id) {
		t.Errorf("the engine pulled %s for %s: not the amd64 image the plugin pins", id, byDigest)
	}
	contains(t, "the pulled image's version", must(t, "docker", "run", "--rm", byDigest, "version"), "Version:   "+distVersion)
	tags := []string{distVersion}
	if !strings.ContainsAny(strings.TrimPrefix(distVersion, "v"), "-+") {
		tags = append(tags, "latest")
	}
	for _, tag := range tags {
		must(t, "docker", "pull", "-q", repo+":"+tag)
		if got := strings.TrimSpace(must(t, "docker", "image", "inspect", "-f", "{{.Id}}", repo+":"+tag)); got != id {
			t.Errorf("%s:%s is %s, the digest's %s", repo, tag, got, id)
		}
	}
}
