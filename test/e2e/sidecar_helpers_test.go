package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
)

var (
	sidecarOnce, faultSidecarOnce   sync.Once
	sidecarImg, faultSidecarImg     string
	sidecarBuild, faultSidecarBuild error
	// imageBuilds serializes `make image`: the builds share bin/sidecar.
	imageBuilds sync.Mutex
)

// sidecarImage builds the sidecar image from the repository's own Dockerfile (make image),
// once per test run.
func sidecarImage(t *testing.T) string {
	t.Helper()
	sidecarOnce.Do(func() { sidecarImg, sidecarBuild = buildSidecarImage("docker-backup-sidecar:"+imageTag("e2e"), "") })
	if sidecarBuild != nil {
		t.Fatal(sidecarBuild)
	}
	return sidecarImg
}

// faultSidecarImage is the sidecar image built with the fault-injection points.
func faultSidecarImage(t *testing.T) string {
	t.Helper()
	faultSidecarOnce.Do(func() {
		faultSidecarImg, faultSidecarBuild = buildSidecarImage("docker-backup-sidecar:"+imageTag("faults"), "faultinject")
	})
	if faultSidecarBuild != nil {
		t.Fatal(faultSidecarBuild)
	}
	return faultSidecarImg
}

func buildSidecarImage(img, tags string) (string, error) {
	imageBuilds.Lock()
	defer imageBuilds.Unlock()
	out, err := exec.Command("make", "-C", fixtureRoot, "image", "IMAGE="+img, "TAGS="+tags).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("make image: %v\n%s", err, out)
	}
	return img, nil
}

// imageTag is the tag of the images the tests build: E2E_IMAGE_TAG keeps a second test run
// on the same engine from replacing the first one's images.
func imageTag(name string) string {
	if v := os.Getenv("E2E_IMAGE_TAG"); v != "" {
		return name + "-" + v
	}
	return name
}

// startSidecar runs the sidecar image as a service of the project, with the Docker socket,
// a backups volume as its default target and a state volume, and waits until it answers.
// It returns the container name and the backups volume.
func startSidecar(t *testing.T, p *project, args ...string) (string, string) {
	t.Helper()
	return startSidecarImage(t, p, sidecarImage(t), args...)
}

func startSidecarImage(t *testing.T, p *project, image string, args ...string) (string, string) {
	t.Helper()
	backups, state := p.volume("backups"), p.volume("backup-state")
	run := append([]string{"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", backups + ":/backups",
		"-v", state + ":/var/lib/docker-backup", "--restart", "unless-stopped"}, asImageUser(t, args)...)
	name := p.service("backup", image, run...)
	waitSidecar(t, name)
	return name, backups
}

// asImageUser adapts a sidecar's docker run arguments to the image's own user (65532, not
// root), as the documentation tells users to: the Docker socket's group added, and the host
// directories mounted into it (-v /abs/path:...) made its own. Arguments naming a --user
// are left as they are.
func asImageUser(t *testing.T, args []string) []string {
	t.Helper()
	for _, a := range args {
		if a == "--user" || a == "-u" || strings.HasPrefix(a, "--user=") {
			return args
		}
	}
	for i, a := range args {
		if a != "-v" || i+1 == len(args) || !strings.HasPrefix(args[i+1], "/") {
			continue
		}
		host, _, _ := strings.Cut(args[i+1], ":")
		if out, err := exec.Command("chown", "-R", "65532:65532", host).CombinedOutput(); err != nil {
			t.Fatalf("giving %s to the sidecar's user: %v %s", host, err, out)
		}
	}
	return append([]string{"--group-add", socketGroup(t)}, args...)
}

func waitSidecar(t *testing.T, name string) {
	t.Helper()
	eventually(t, time.Minute, "sidecar answering", func() error {
		_, stderr, err := dockerCmd(nil, "exec", name, "/sidecar", "ctl", "GET", control.PathStatus)
		if err != nil {
			logs, _, _ := dockerCmd(nil, "logs", "--tail", "20", name)
			return fmt.Errorf("%v: %s\nlogs: %s", err, stderr, logs)
		}
		return nil
	})
}

// sidecarStatus is `docker backup status --format json` of the project.
func sidecarStatus(t *testing.T, project string) control.Status {
	t.Helper()
	var st control.Status
	out := backup(t, "status", "--project", project, "--format", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status output: %v\n%s", err, out)
	}
	return st
}

func jobStatus(st control.Status, service, job string) *control.JobStatus {
	for i := range st.Jobs {
		if st.Jobs[i].Service == service && st.Jobs[i].Job == job {
			return &st.Jobs[i]
		}
	}
	return nil
}

// sidecarBackups is `docker backup ls --format json` through the project's sidecar.
func sidecarBackups(t *testing.T, project, service string) []artifact.Summary {
	t.Helper()
	out := backup(t, "ls", "--project", project, "--service", service, "--format", "json")
	var ms []artifact.Summary
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		t.Fatalf("ls output: %v\n%s", err, out)
	}
	return ms
}

// volumeDir is the host directory of a named volume (the engine is local in the tests).
func volumeDir(t *testing.T, volume string) string {
	return strings.TrimSpace(docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", volume))
}

// waitRuns waits until the job has had at least n successful runs.
func waitRuns(t *testing.T, project, service, job string, n int, timeout time.Duration) control.JobStatus {
	t.Helper()
	var js *control.JobStatus
	eventually(t, timeout, fmt.Sprintf("%d successful runs of %s/%s", n, service, job), func() error {
		st := sidecarStatus(t, project)
		if js = jobStatus(st, service, job); js == nil {
			return fmt.Errorf("no job %s/%s in %+v (problems %q)", service, job, st.Jobs, st.Problems)
		}
		if js.Runs["success"] < n {
			last := ""
			if js.Last != nil {
				last = string(js.Last.Status) + " " + js.Last.Error
			}
			return fmt.Errorf("%d successful runs (%v), last: %s", js.Runs["success"], js.Runs, last)
		}
		return nil
	})
	return *js
}

// containerLogs returns a container's output, stdout and stderr.
func containerLogs(t *testing.T, name string) string {
	t.Helper()
	out, stderr, err := dockerCmd(nil, "logs", name)
	if err != nil {
		t.Fatalf("docker logs %s: %v", name, err)
	}
	return out + stderr
}

// idle is a command that keeps a container running and stops at once on SIGTERM.
var idle = []string{"--", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"}

// volumeService starts an idle service with a volume at /data, enabled for the sidecar with
// the volume strategy, and the given docker-backup labels.
func (p *project) volumeService(name string, labels ...string) string {
	p.t.Helper()
	args := []string{"-v", p.volume(name) + ":/data", "--label", "docker-backup.enable=true", "--label", "docker-backup.strategy=volume"}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	return p.service(name, plainImage, append(args, idle...)...)
}
