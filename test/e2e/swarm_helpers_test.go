package e2e

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// teardownTime is what the rig's teardown may take: waits end before the test's deadline
// leaves less, so that a failing run still leaves the swarm (a test binary that times out
// panics without its cleanups; the next rig then removes what it left).
const teardownTime = 3 * time.Minute

// within caps a wait at the time left before the test's deadline, less the teardown's.
func (r *swarmRig) within(d time.Duration) time.Duration {
	if deadline, ok := r.t.Deadline(); ok {
		if left := time.Until(deadline) - teardownTime; left < d {
			return max(left, time.Second)
		}
	}
	return d
}

// logSidecars logs the sidecar's tasks and the end of each of its containers' logs on both
// nodes, to tell why a backup did not come.
func (r *swarmRig) logSidecars(t *testing.T) {
	t.Helper()
	t.Logf("sidecar tasks:\n%s", r.taskList(t, "backup"))
	for _, n := range []node{manager, worker} {
		ids, _, _ := r.on(n, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+r.stack+"_backup")
		for _, id := range strings.Fields(ids) {
			out, stderr, _ := r.on(n, "logs", "--tail", "25", id)
			t.Logf("sidecar %s on %s:\n%s%s", id, r.nodeName(n), out, stderr)
		}
	}
}

// A node of the rig: the manager (the host's engine) or the worker.
type node bool

const (
	manager node = false
	worker  node = true
)

// on runs the docker CLI against a node's engine.
func (r *swarmRig) on(n node, args ...string) (string, string, error) {
	if n == worker {
		return r.onWorker(args...)
	}
	return dockerCmd(nil, args...)
}

// must is on failing the test on error.
func (r *swarmRig) must(t *testing.T, n node, args ...string) string {
	t.Helper()
	out, stderr, err := r.on(n, args...)
	if err != nil {
		t.Fatalf("docker %s (on the %s): %v\n%s", strings.Join(args, " "), r.nodeName(n), err, stderr)
	}
	return out
}

func (r *swarmRig) nodeName(n node) string {
	if n == worker {
		return r.worker
	}
	return r.manager
}

// containers lists the running containers of a stack service on a node.
func (r *swarmRig) containers(t *testing.T, n node, service string) []string {
	t.Helper()
	return strings.Fields(r.must(t, n, "ps", "-q", "--filter", "status=running",
		"--filter", "label=com.docker.swarm.service.name="+r.stack+"_"+service))
}

// container waits for a running container of a stack service on a node and returns it.
func (r *swarmRig) container(t *testing.T, n node, service string) string {
	t.Helper()
	var ids []string
	eventually(t, r.within(3*time.Minute), fmt.Sprintf("a running %s task on %s", service, r.nodeName(n)), func() error {
		if ids = r.containers(t, n, service); len(ids) == 0 {
			return fmt.Errorf("none; tasks: %s", r.taskList(t, service))
		}
		return nil
	})
	return ids[0]
}

// exec runs a shell script in a running container of a service on a node.
func (r *swarmRig) exec(t *testing.T, n node, service, script string) string {
	t.Helper()
	return r.must(t, n, "exec", r.container(t, n, service), "sh", "-c", script)
}

// taskList is `docker service ps` of a stack service, for messages.
func (r *swarmRig) taskList(t *testing.T, service string) string {
	t.Helper()
	out, stderr, _ := dockerCmd(nil, "service", "ps", "--no-trunc", "--format",
		"{{.Name}} {{.Node}} desired={{.DesiredState}} current={{.CurrentState}} {{.Error}}", r.stack+"_"+service)
	return out + stderr
}

// runningTasks maps the node of each running task of a stack service to their count.
func (r *swarmRig) runningTasks(t *testing.T, service string) map[string]int {
	t.Helper()
	out := docker(t, "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}", r.stack+"_"+service)
	nodes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "Running" {
			nodes[f[0]]++
		}
	}
	return nodes
}

// replicas returns a replicated service's replica count and the count before its last update
// (-1: no update yet).
func (r *swarmRig) replicas(t *testing.T, service string) (int, int) {
	t.Helper()
	out := docker(t, "service", "inspect", "-f",
		"{{.Spec.Mode.Replicated.Replicas}} {{with .PreviousSpec}}{{.Mode.Replicated.Replicas}}{{else}}-1{{end}}", r.stack+"_"+service)
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("service inspect %s: %q", service, out)
	}
	now, _ := strconv.Atoi(f[0])
	before, _ := strconv.Atoi(f[1])
	return now, before
}

// runningTaskIDs lists the IDs of a service's tasks that run.
func (r *swarmRig) runningTaskIDs(t *testing.T, service string) []string {
	t.Helper()
	out := docker(t, "service", "ps", "--filter", "desired-state=running", "--no-trunc", "--format", "{{.ID}} {{.CurrentState}}", r.stack+"_"+service)
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "Running" {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// waitBackToOne waits until a replicated service is at 1 replica again with a running task.
func (r *swarmRig) waitBackToOne(t *testing.T, service string) {
	t.Helper()
	eventually(t, r.within(3*time.Minute), service+" back to 1 replica, running", func() error {
		if n, _ := r.replicas(t, service); n != 1 {
			return fmt.Errorf("%d replicas; tasks: %s", n, r.taskList(t, service))
		}
		if tasks := r.runningTasks(t, service); len(tasks) != 1 {
			return fmt.Errorf("running tasks %v; tasks: %s", tasks, r.taskList(t, service))
		}
		return nil
	})
}

// stackBackup is one backup of the stack on the shared target.
type stackBackup struct {
	dir string // the key's service directory: db, files, agent@NODE, web
	m   artifact.Manifest
}

// start is when the backup began at the latest.
func (b stackBackup) start() time.Time {
	return b.m.CreatedAt.Add(-time.Duration(b.m.DurationMS) * time.Millisecond)
}

// stackBackups reads the manifests of the stack's backups on the target, by the service
// directory of their keys (STACK/SERVICE/..., whatever prefix is before), oldest first.
func (r *swarmRig) stackBackups(t *testing.T) map[string][]stackBackup {
	t.Helper()
	out := map[string][]stackBackup{}
	for _, key := range r.minio.objects(r.bucket) {
		if !strings.HasSuffix(key, artifact.ManifestSuffix) || strings.Contains(key, "_catalog/") {
			continue
		}
		dir, ok := r.serviceDir(key)
		if !ok {
			continue
		}
		m, err := artifact.Unmarshal(r.object(t, key))
		if err != nil {
			t.Fatalf("manifest %s: %v", key, err)
		}
		out[dir] = append(out[dir], stackBackup{dir: dir, m: *m})
	}
	for _, bs := range out {
		sort.Slice(bs, func(i, j int) bool { return bs[i].m.CreatedAt.Before(bs[j].m.CreatedAt) })
	}
	return out
}

// serviceDir finds STACK/SERVICE/ in a key.
func (r *swarmRig) serviceDir(key string) (string, bool) {
	parts := strings.Split(key, "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == r.stack {
			return parts[i+1], true
		}
	}
	return "", false
}

func (r *swarmRig) object(t *testing.T, key string) []byte {
	t.Helper()
	o, err := r.minio.client.GetObject(context.Background(), r.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// backupAfter waits for a backup of a service directory begun after since.
func (r *swarmRig) backupAfter(t *testing.T, dir string, since time.Time, timeout time.Duration) stackBackup {
	t.Helper()
	var found stackBackup
	eventually(t, r.within(timeout), "a backup of "+dir+" begun after "+since.Format(time.RFC3339), func() error {
		all := r.stackBackups(t)
		for i := len(all[dir]) - 1; i >= 0; i-- {
			if all[dir][i].start().After(since) {
				found = all[dir][i]
				return nil
			}
		}
		return fmt.Errorf("backups by service: %s", backupCounts(all))
	})
	return found
}

func backupCounts(all map[string][]stackBackup) string {
	var s []string
	for dir, bs := range all {
		s = append(s, fmt.Sprintf("%s=%d", dir, len(bs)))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// checkArtifact checks that a backup's stored bytes are what its manifest says, and returns
// the files of its tar archive (volume backups) by base name.
func (r *swarmRig) checkArtifact(t *testing.T, b stackBackup) map[string]string {
	t.Helper()
	raw := r.object(t, b.m.Artifact)
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != b.m.SHA256 || int64(len(raw)) != b.m.Size {
		t.Errorf("%s does not match its manifest (%d bytes, manifest %d)", b.m.Artifact, len(raw), b.m.Size)
		return nil
	}
	if b.m.Strategy != "volume" {
		return nil
	}
	zr, err := b.m.Compression.NewReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("%s: %v", b.m.Artifact, err)
	}
	defer zr.Close()
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: reading its tar: %v", b.m.Artifact, err)
		}
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			body, _ := io.ReadAll(tr)
			name := h.Name[strings.LastIndex(h.Name, "/")+1:]
			files[name] = string(body)
		}
	}
}

// statusText and the JSON forms of `docker backup` through a node's engine.
func (r *swarmRig) plugin(t *testing.T, n node, args ...string) string {
	t.Helper()
	var env []string
	if n == worker {
		env = []string{"DOCKER_HOST=" + r.workerHost}
	}
	out, stderr, err := dockerCmd(env, append([]string{"backup"}, args...)...)
	if err != nil {
		t.Fatalf("docker backup %s (on the %s): %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.nodeName(n), err, out, stderr)
	}
	return out
}

// listed is `docker backup ls -p STACK --format json` through a node's engine.
func (r *swarmRig) listed(t *testing.T, n node, args ...string) []artifact.Summary {
	t.Helper()
	out := r.plugin(t, n, append([]string{"ls", "-p", r.stack, "--format", "json"}, args...)...)
	var ss []artifact.Summary
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("ls output: %v\n%s", err, out)
	}
	return ss
}

// faultFile writes or removes a file in the state volume of the manager's sidecar.
func (r *swarmRig) stateDir(t *testing.T) string {
	t.Helper()
	return volumeDir(t, r.stack+"_backup-state")
}
