//go:build dist

package dist

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A release plugin that cannot be its own worker image — here dynamically linked, as a
// distribution's cgo build is; on macOS, Windows or another architecture the reason differs
// — backs up and restores a volume in a worker container of the release's sidecar image,
// found by the digest it pins; detect says so. Another image under the release's tag is
// refused (the archive API then does the work).
func TestWorkerFallsBackToSidecarImage(t *testing.T) {
	tag := "docker-backup-sidecar:" + distVersion
	must(t, "docker", "load", "-q", "-i", dist("sidecar-linux-amd64.tar"))
	sidecarID := strings.TrimSpace(must(t, "docker", "image", "inspect", "-f", "{{.Id}}", tag))

	// The release's linux/amd64 plugin, linked the same way but with cgo.
	cfg := t.TempDir()
	plugin := filepath.Join(cfg, "cli-plugins", "docker-backup")
	const pkg = "github.com/docker-backup/docker-backup/internal/version."
	info := pluginInfo(t)
	ldflags := "-X " + pkg + "Version=" + info.Version + " -X " + pkg + "Commit=" + info.Commit +
		" -X " + pkg + "SidecarDigests=" + linkedPinsText(t, dist("docker-backup-linux-amd64"))
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", plugin, "./cmd/docker-backup")
	build.Dir, build.Env = repoRoot, append(build.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a cgo plugin: %v\n%s", err, out)
	}
	if f := must(t, "file", "-b", plugin); !strings.Contains(f, "dynamically linked") {
		t.Fatalf("the cgo plugin is not dynamically linked (%s): it would be its own worker, and this test would prove nothing", f)
	}
	env := []string{"DOCKER_CONFIG=" + cfg, "DOCKER_BACKUP_WORKER=on"}
	backup := func(args ...string) string {
		t.Helper()
		out, stderr, err := run(env, "docker", append([]string{"backup"}, args...)...)
		if err != nil {
			t.Fatalf("docker backup %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out + stderr
	}

	// A compose service with a volume.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "dist-worker-" + hex.EncodeToString(b)
	vol := project + "_data"
	must(t, "docker", "volume", "create", "--label", "com.docker.compose.project="+project, vol)
	app := project + "-app-1"
	t.Cleanup(func() {
		_, _, _ = run(nil, "docker", "rm", "-f", "-v", app)
		_, _, _ = run(nil, "docker", "volume", "rm", "-f", vol)
	})
	must(t, "docker", "run", "-d", "--name", app, "--label", "com.docker.compose.project="+project,
		"--label", "com.docker.compose.service=app", "--label", "com.docker.compose.container-number=1",
		"-v", vol+":/data", fixture(t, "plain"), "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
	tree := func() string {
		return must(t, "docker", "exec", app, "sh", "-c", "cd /data && find . -type f | sort | xargs sha256sum")
	}
	must(t, "docker", "exec", app, "sh", "-c", "mkdir -p /data/d && seq 1 20000 > /data/d/list && echo hello > /data/f")
	before := tree()

	contains(t, "detect", backup("detect", "-p", project),
		"Volume worker: the sidecar image "+tag+" ("+sidecarID[:len("sha256:")+12]+", pinned by this release), since", "dynamically linked")

	since := time.Now().Add(-time.Second).Format(time.RFC3339)
	dir := t.TempDir()
	out := backup("run", "app", "-p", project, "--to", dir)
	contains(t, "the backup", out, "Worker image: the sidecar image of this release", "image="+sidecarID)
	until := time.Now().Add(time.Second).Format(time.RFC3339)
	workers := must(t, "docker", "events", "--since", since, "--until", until, "--filter", "type=container",
		"--filter", "event=create", "--filter", "label=org.docker-backup.scratch.service="+project+"/app", "--format", "{{.From}}")
	// Every worker ran the sidecar image: the backup's, and detect's (it measures the volume
	// with one, within the second of slack before since).
	images := strings.Fields(workers)
	if len(images) == 0 {
		t.Errorf("the backup started no worker container")
	}
	for _, img := range images {
		if img != sidecarID {
			t.Errorf("the backup's worker containers ran %q, want the sidecar image %s", workers, sidecarID)
			break
		}
	}

	must(t, "docker", "exec", app, "sh", "-c", "rm -rf /data/d && echo changed > /data/f")
	backup("restore", "latest", "--from", dir, "--to", "app", "-p", project, "--yes")
	if after := tree(); after != before {
		t.Errorf("restored through the sidecar image's worker, the volume holds\n%s\nwant\n%s", after, before)
	}

	// Another image under the release's tag (and the release's gone): refused, and said.
	must(t, "docker", "image", "rm", tag)
	t.Cleanup(func() {
		_, _, _ = run(nil, "docker", "image", "rm", tag)
		must(t, "docker", "load", "-q", "-i", dist("sidecar-linux-amd64.tar"))
	})
	must(t, "docker", "tag", fixture(t, "plain"), tag)
	contains(t, "detect with a foreign image", backup("detect", "-p", project),
		"Volume worker: none, volumes go through the Engine's archive API", "is not the sidecar image of this release "+distVersion)
	// A restore (always beside the data when it can) says why it cannot, and takes the
	// archive API: the data still comes back.
	must(t, "docker", "exec", app, "sh", "-c", "rm -rf /data/d")
	out, stderr, err := run([]string{"DOCKER_CONFIG=" + cfg}, "docker", "backup", "restore", "latest", "--from", dir, "--to", "app", "-p", project, "--yes")
	if err != nil {
		t.Fatalf("restore with a foreign image under the release's tag: %v\n%s%s", err, out, stderr)
	}
	contains(t, "the restore with a foreign image", out+stderr, "is not the sidecar image of this release", "the Engine's archive API")
	if after := tree(); after != before {
		t.Errorf("restored through the archive API, the volume holds\n%s\nwant\n%s", after, before)
	}
}
