package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwarm: a stack on a real two-node swarm (swarm_rig_test.go) — the sidecar as a global
// service, postgres on the worker with its password a swarm secret, a stop: true volume
// service on the manager, a global and a replicated volume service — is backed up on
// schedule to a shared S3 target and restored through the sidecar of the node that runs the
// task. Not parallel: one swarm per engine; the subtests share one rig, made once.
func TestSwarm(t *testing.T) {
	r := startSwarmRig(t)
	if !t.Run("rig", r.checkRig) {
		t.Run("left-swarm", r.checkLeft)
		t.Fatal("the swarm rig is not up: the other subtests were not run")
	}
	d := &swarmData{}
	if !t.Run("write-data", func(t *testing.T) { d.write(t, r) }) {
		t.Run("left-swarm", r.checkLeft)
		t.FailNow()
	}
	if !t.Run("scheduled", func(t *testing.T) { testSwarmScheduled(t, r, d) }) {
		r.logSidecars(t)
		t.Run("left-swarm", r.checkLeft)
		t.Fatal("no scheduled backups of every service: the subtests that use them were not run")
	}
	t.Run("stop-scales", func(t *testing.T) { testSwarmStop(t, r, d) })
	t.Run("restore", func(t *testing.T) { testSwarmRestore(t, r, d) })
	t.Run("ls-status", func(t *testing.T) { testSwarmListStatus(t, r) })
	t.Run("rolling-update", func(t *testing.T) { testSwarmRollingUpdate(t, r) })
	t.Run("kill-sidecar", func(t *testing.T) { testSwarmKill(t, r, d) })
	t.Run("left-swarm", r.checkLeft)
}

// checkRig: two nodes, the images on the worker, every service's tasks where the stack puts
// them, MinIO reachable from a task on the worker.
func (r *swarmRig) checkRig(t *testing.T) {
	for name, role := range map[string]string{r.manager: "manager", r.worker: "worker"} {
		if got := strings.TrimSpace(docker(t, "node", "inspect", name, "-f", "{{.Spec.Role}} {{.Status.State}}")); got != role+" ready" {
			t.Errorf("node %s: %q, want %s ready", name, got, role)
		}
	}
	for _, img := range []string{r.sidecar, postgresImage, plainImage} {
		if _, stderr, err := r.onWorker("image", "inspect", img); err != nil {
			t.Errorf("image %s not on the worker: %s", img, stderr)
		}
	}
	want := map[string]map[string]int{
		"db":    {r.worker: 1},
		"files": {r.manager: 1},
		"agent": {r.manager: 1, r.worker: 1},
	}
	eventually(t, r.within(4*time.Minute), "the stack's tasks running", func() error {
		for svc, nodes := range want {
			if got := r.runningTasks(t, svc); fmt.Sprint(got) != fmt.Sprint(nodes) {
				return fmt.Errorf("%s runs on %v, want %v; tasks:\n%s", svc, got, nodes, r.taskList(t, svc))
			}
		}
		web := r.runningTasks(t, "web")
		if web[r.manager]+web[r.worker] != 3 {
			return fmt.Errorf("web runs on %v, want 3 tasks; tasks:\n%s", web, r.taskList(t, "web"))
		}
		return nil
	})
	// The sidecar was placed and started on both nodes (before the Swarm support lands it
	// may not stay up: its tasks are checked by the other subtests through what it does).
	eventually(t, r.within(2*time.Minute), "a sidecar task started on each node", func() error {
		out := docker(t, "service", "ps", "--format", "{{.Node}}|{{.CurrentState}}|{{.Error}}", r.stack+"_backup")
		for _, n := range []string{r.manager, r.worker} {
			if !strings.Contains(out, n+"|Running") && !strings.Contains(out, n+"|Failed") && !strings.Contains(out, n+"|Complete") {
				return fmt.Errorf("no sidecar task started on %s:\n%s", n, out)
			}
		}
		return nil
	})
	// MinIO answers a task on the worker (its overlay network, out through the worker's engine).
	probe := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && printf 'GET /minio/health/live HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' >&3 && head -1 <&3`,
		r.gateway, r.minio.addr[strings.LastIndex(r.minio.addr, ":")+1:], r.minio.addr)
	out := r.must(t, worker, "exec", r.container(t, worker, "agent"), "bash", "-c", probe)
	if !strings.Contains(out, " 200 ") {
		t.Errorf("MinIO's health from a task on the worker: %q", out)
	}
	// The manager's API through the path both nodes mount, as the sidecar's user.
	get := `use IO::Socket::UNIX; $s = IO::Socket::UNIX->new(Peer => "/m.sock") or die "connect: $!";
print $s "GET /v1.41/info HTTP/1.0\r\n\r\n"; print while <$s>`
	for _, n := range []node{manager, worker} {
		out := r.must(t, n, "run", "--rm", "-v", managerSock+":/m.sock", "--user", "65532:"+socketGroup(t), plainImage, "perl", "-e", get)
		if !strings.Contains(out, `"Name":"`+r.manager+`"`) {
			t.Errorf("the manager's API through %s on the %s: %.300s", managerSock, r.nodeName(n), out)
		}
	}
}

// checkLeft tears the rig down and checks the host is out of swarm mode with nothing left.
func (r *swarmRig) checkLeft(t *testing.T) {
	r.teardown()
	if state := swarmState(t); state != "inactive" {
		t.Errorf("the host is in swarm mode after the rig (%s)", state)
	}
	if _, _, err := dockerCmd(nil, "inspect", swarmWorker); err == nil {
		t.Errorf("the worker container %s is still there", swarmWorker)
	}
	if _, err := os.Lstat(managerSock); err == nil {
		t.Errorf("%s is still there", managerSock)
	}
	if out := docker(t, "ps", "-a", "--filter", "label=org.docker-backup.scratch", "--format", `{{.Names}} {{.Label "org.docker-backup.scratch.service"}}`); strings.Contains(out, " "+r.stack+"/") {
		t.Errorf("worker or scratch containers of the stack left:\n%s", out)
	}
	for _, kind := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}} {
		if out := docker(t, append(kind, "--filter", "label=com.docker.stack.namespace="+r.stack)...); strings.TrimSpace(out) != "" {
			t.Errorf("%s of the stack left: %s", kind[0], out)
		}
	}
}

// swarmData is what the test wrote before the backups, and its digests.
type swarmData struct {
	written time.Time // after every write
	db      string    // row count and checksum
	files   string    // the tree hash of files' volume
}

const dbDigest = `SELECT count(*) || '|' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM items`

const dataTreeHash = `find . -printf '%p|%y|%m|%U|%G|%s|%l\n' | LC_ALL=C sort &&
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`

// psql runs SQL in the db task on the worker (its local socket: trust).
func (r *swarmRig) psql(t *testing.T, sql string) string {
	t.Helper()
	return strings.TrimSpace(r.must(t, worker, "exec", r.container(t, worker, "db"), "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql))
}

func (r *swarmRig) dbReady(t *testing.T) {
	t.Helper()
	eventually(t, r.within(3*time.Minute), "postgres answering on the worker", func() error {
		_, stderr, err := r.onWorker("exec", r.container(t, worker, "db"), "pg_isready", "-h", "127.0.0.1", "-U", "postgres")
		if err != nil {
			return fmt.Errorf("%v %s", err, stderr)
		}
		return nil
	})
}

// filesSh runs a script in files' volume on the host (the manager): its task comes and
// goes with every backup (stop: true), the volume stays.
func (r *swarmRig) filesSh(t *testing.T, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = volumeDir(t, r.stack+"_files-data")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in files' volume: %s: %v\n%s", script, err, out)
	}
	return string(out)
}

func (r *swarmRig) filesTree(t *testing.T) string {
	t.Helper()
	return r.filesSh(t, dataTreeHash)
}

// write fills db (and checks the password is the swarm secret's), files, every agent and
// every web task with known data.
func (d *swarmData) write(t *testing.T, r *swarmRig) {
	r.dbReady(t)
	r.psql(t, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g`)
	d.db = r.psql(t, dbDigest)
	if !strings.HasPrefix(d.db, "5000|") {
		t.Fatalf("db digest %q", d.db)
	}
	// The password from the secret file logs in over TCP (no password in any command line).
	login := `PGPASSWORD="$(cat /run/secrets/db_password)" psql -h 127.0.0.1 -U postgres -At -c 'SELECT 1'`
	if out := strings.TrimSpace(r.exec(t, worker, "db", login)); out != "1" {
		t.Errorf("login with the swarm secret's password: %q", out)
	}
	r.filesSh(t, `set -e; mkdir -p dir/sub; echo hello > hello.txt
head -c 300000 /dev/urandom > dir/blob; echo deep > dir/sub/deep; ln -sfn dir link`)
	d.files = r.filesTree(t)
	for _, n := range []node{manager, worker} {
		r.exec(t, n, "agent", "echo "+r.nodeName(n)+" > /data/node")
		for _, c := range r.containers(t, n, "web") {
			r.must(t, n, "exec", c, "sh", "-c", "echo web > /data/web")
		}
	}
	d.written = time.Now()
}

// testSwarmScheduled: each node's sidecar backs up the tasks on its node on schedule, under
// STACK/SERVICE on the shared target; the global service once per node (agent@NODE), the
// replicated one once per run (by one task, not three).
func testSwarmScheduled(t *testing.T, r *swarmRig, d *swarmData) {
	dirs := []string{"db", "files", "agent@" + r.manager, "agent@" + r.worker, "web"}
	for _, dir := range dirs {
		b := r.backupAfter(t, dir, d.written, 3*time.Minute)
		if b.m.Project != r.stack || b.m.Service != dir {
			t.Errorf("%s: manifest project %q service %q, want %q and %q", b.m.Artifact, b.m.Project, b.m.Service, r.stack, dir)
		}
		files := r.checkArtifact(t, b)
		if host, ok := strings.CutPrefix(dir, "agent@"); ok && strings.TrimSpace(files["node"]) != host {
			t.Errorf("%s holds the agent data of %q, want %q's", b.m.Artifact, files["node"], host)
		}
		if dir == "web" && strings.TrimSpace(files["web"]) != "web" {
			t.Errorf("%s: web's data %q", b.m.Artifact, files["web"])
		}
	}
	// Two runs of web at least: each made one backup, all by the same task.
	r.backupAfter(t, "web", r.backupAfter(t, "web", d.written, time.Minute).m.CreatedAt, 2*time.Minute)
	all := r.stackBackups(t)
	containers := map[string]int{}
	for _, b := range all["web"] {
		containers[b.m.Container]++
	}
	if len(containers) != 1 {
		t.Errorf("web's backups come from %d containers, want one (its lowest-slot task): %v", len(containers), containers)
	}
	for dir := range all {
		if !contains(dirs, dir) {
			t.Errorf("backups under %s/%s/, which is none of %q", r.stack, dir, dirs)
		}
	}
}

// testSwarmStop: files (stop: true) is scaled to 0 for its backup, then back to 1 replica
// with a running task and its data unchanged.
func testSwarmStop(t *testing.T, r *swarmRig, d *swarmData) {
	// (A scale-down lasts the task's stop, the backup and the scale-up: seconds.)
	var scaled time.Time
	before := r.runningTaskIDs(t, "files")
	eventually(t, r.within(2*time.Minute), "files scaled to 0 for a backup", func() error {
		at := time.Now()
		if n, _ := r.replicas(t, "files"); n != 0 {
			return fmt.Errorf("files at %d replicas", n)
		}
		scaled = at
		return nil
	})
	r.waitBackToOne(t, "files")
	if _, before := r.replicas(t, "files"); before != 0 {
		t.Logf("files' update before now set %d replicas (0 when the last update was the scale-up)", before)
	}
	// Swarm removes the tasks of a service scaled down (no shut-down task stays in its
	// history): the task that runs now is a new one.
	if after := r.runningTaskIDs(t, "files"); len(before) == 1 && len(after) == 1 && after[0] == before[0] {
		t.Errorf("files runs the same task %s as before it was seen at 0 replicas; tasks:\n%s", after[0], r.taskList(t, "files"))
	}
	// The backup of that run holds the data; the data is unchanged.
	var b stackBackup
	eventually(t, r.within(time.Minute), "the backup made while files was at 0", func() error {
		for _, x := range r.stackBackups(t)["files"] {
			// The first to end after files was seen at 0 (oldest first; a run's manifest is
			// dated at its start or its end).
			if x.m.CreatedAt.Add(time.Duration(x.m.DurationMS) * time.Millisecond).After(scaled) {
				b = x
				return nil
			}
		}
		return fmt.Errorf("no backup of files under way at %s", scaled.Format(time.RFC3339Nano))
	})
	if got := r.checkArtifact(t, b); strings.TrimSpace(got["hello.txt"]) != "hello" || strings.TrimSpace(got["deep"]) != "deep" {
		t.Errorf("%s: files %v", b.m.Artifact, keysOf(got))
	}
	if tree := r.filesTree(t); tree != d.files {
		t.Errorf("files' data changed by its backups:\n%s", diffLines(d.files, tree))
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// testSwarmRestore: db is restored through the worker's sidecar (the plugin on the worker's
// engine), refused on the manager's with the node to use named; files is restored on the
// manager and is back at 1 replica.
func testSwarmRestore(t *testing.T, r *swarmRig, d *swarmData) {
	dbKey := r.listedAfter(t, worker, "db", d.written)
	r.psql(t, `DELETE FROM items WHERE id % 3 = 0; UPDATE items SET v = 'changed' WHERE id < 100`)
	if changed := r.psql(t, dbDigest); changed == d.db {
		t.Fatal("the change did not change db")
	}
	// A Docker context for the worker: the plugin on the manager names it.
	workerCtx := "e2e-" + r.stack + "-worker"
	if _, stderr, err := dockerCmd(nil, "context", "create", workerCtx, "--docker", "host="+r.workerHost); err != nil {
		t.Fatalf("docker context create: %v: %s", err, stderr)
	}
	t.Cleanup(func() { _, _, _ = dockerCmd(nil, "context", "rm", "-f", workerCtx) })
	var env []string
	stderr := backupFails(t, env, "restore", dbKey, "--to", "db", "-p", r.stack, "--yes")
	if !strings.Contains(stderr, "runs on node "+r.worker) || !strings.Contains(stderr, "docker --context "+workerCtx+" backup") {
		t.Errorf("restoring db on the manager: the error does not name the node %s and its context %s:\n%s", r.worker, workerCtx, stderr)
	}
	if out, stderr, err := dockerCmd(nil, "--context", workerCtx, "backup", "restore", dbKey, "--to", "db", "-p", r.stack, "--yes"); err != nil {
		t.Fatalf("restore through the worker's context: %v\n%s\n%s", err, out, stderr)
	}
	// verify on the worker: a scratch copy of the task (its secret file mounted) restores the
	// backup and counts its rows.
	if out, stderr, err := dockerCmd(nil, "--context", workerCtx, "backup", "verify", dbKey, "-p", r.stack, "--service", "db"); err != nil || !strings.Contains(out, "items") {
		t.Errorf("verify of db on the worker: %v\n%s\n%s", err, out, stderr)
	}
	r.dbReady(t)
	if got := r.psql(t, dbDigest); got != d.db {
		t.Errorf("db after the restore: %q, want %q", got, d.db)
	}

	filesKey := r.listedAfter(t, manager, "files", d.written)
	// (Files made after the backup would stay: a restore replaces and merges, deletes nothing.)
	r.filesSh(t, `set -e; echo changed > hello.txt; rm -rf dir/sub; head -c 1000 /dev/urandom > dir/blob`)
	if r.filesTree(t) == d.files {
		t.Fatal("the change did not change files")
	}
	r.plugin(t, manager, "restore", filesKey, "--to", "files", "-p", r.stack, "--yes")
	r.waitBackToOne(t, "files")
	// (What the swaps replaced is removed after the service is up again.)
	var tree string
	eventually(t, r.within(time.Minute), "files restored", func() error {
		if tree = r.filesTree(t); tree != d.files {
			return fmt.Errorf("not equal")
		}
		return nil
	})
	if tree != d.files {
		t.Errorf("files after the restore:\n%s", diffLines(d.files, tree))
	}
}

// listedAfter is the key, as `docker backup ls` through a node's engine shows it, of the
// newest backup of a service begun after since.
func (r *swarmRig) listedAfter(t *testing.T, n node, service string, since time.Time) string {
	t.Helper()
	b := r.backupAfter(t, service, since, 3*time.Minute)
	for _, s := range r.listed(t, n, "--service", service) {
		if s.SHA256 == b.m.SHA256 {
			return s.Key
		}
	}
	t.Fatalf("docker backup ls on the %s does not list %s", r.nodeName(n), b.m.Artifact)
	return ""
}

// testSwarmListStatus: ls lists the stack's services from the shared target; status shows the
// node of each job.
func testSwarmListStatus(t *testing.T, r *swarmRig) {
	services := map[string]bool{}
	for _, s := range r.listed(t, manager) {
		services[s.Service] = true
	}
	for _, want := range []string{"db", "files", "agent@" + r.manager, "agent@" + r.worker, "web"} {
		if !services[want] {
			t.Errorf("docker backup ls -p %s does not list %s: %v", r.stack, want, services)
		}
	}
	for n, jobs := range map[node][]string{manager: {"files", "agent@" + r.manager}, worker: {"db", "agent@" + r.worker}} {
		out := r.plugin(t, n, "status", "-p", r.stack)
		if n == manager {
			// What the other node backs up, as the manager sees it.
			for _, other := range []string{"db", "agent@" + r.worker} {
				if !strings.Contains(out, r.stack+"/"+other+"  on node "+r.worker) {
					t.Errorf("status on the manager does not say that %s is backed up on node %s:\n%s", other, r.worker, out)
				}
			}
		}
		for _, job := range jobs {
			if !jobLineHas(out, job, r.nodeName(n)) {
				t.Errorf("status on the %s: no line of %s naming node %s:\n%s", r.nodeName(n), job, r.nodeName(n), out)
			}
		}
	}
}

// jobLineHas says whether a line of a status table of the service's jobs (SERVICE/JOB)
// names the node.
func jobLineHas(out, service, nodeName string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], service+"/") && contains(f, nodeName) {
			return true
		}
	}
	return false
}

// testSwarmKill: the manager's sidecar is killed (SIGKILL) while files is scaled to 0 for its
// backup; Swarm restarts the sidecar's task (the same state volume), which puts files back to
// 1 replica; no half backup is listed and the data is unchanged.
func testSwarmKill(t *testing.T, r *swarmRig, d *swarmData) {
	state := r.stateDir(t)
	armed, release := filepath.Join(state, "fault-armed"), filepath.Join(state, "fault-release")
	sidecar := r.holdFilesAtZero(t, armed, release)
	docker(t, "kill", "-s", "KILL", sidecar)
	eventually(t, r.within(3*time.Minute), "Swarm restarted the manager's sidecar", func() error {
		if ids := r.containers(t, manager, "backup"); len(ids) != 1 || strings.HasPrefix(sidecar, ids[0]) {
			return fmt.Errorf("running sidecars on the manager: %q (killed %s)", ids, sidecar)
		}
		return nil
	})
	r.waitBackToOne(t, "files")
	_ = os.Remove(armed)
	if tree := r.filesTree(t); tree != d.files {
		t.Errorf("files' data after the sidecar's kill:\n%s", diffLines(d.files, tree))
	}
	for _, b := range r.stackBackups(t)["files"] {
		r.checkArtifact(t, b)
	}
	// The restarted sidecar goes on: a new backup of files, and files at 1 replica after.
	r.backupAfter(t, "files", time.Now(), 3*time.Minute)
	r.waitBackToOne(t, "files")
}

// holdFilesAtZero arms the manager's sidecar's fault point backup-streamed until the run that
// pauses there is files' (scaled to 0 meanwhile); another job's run that pauses is released.
// It returns the sidecar's container.
func (r *swarmRig) holdFilesAtZero(t *testing.T, armed, release string) string {
	t.Helper()
	sidecar := r.container(t, manager, "backup")
	const reached, released = "fault point backup-streamed reached", "fault point backup-streamed released"
	for attempt := 0; attempt < 10; attempt++ {
		_ = os.Remove(release)
		before := strings.Count(containerLogs(t, sidecar), reached)
		if err := os.WriteFile(armed, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		eventually(t, r.within(3*time.Minute), "the manager's sidecar at its fault point", func() error {
			if strings.Count(containerLogs(t, sidecar), reached) == before {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if n, _ := r.replicas(t, "files"); n == 0 {
			return sidecar
		}
		// Another job's run: let it go on and arm again.
		gone := strings.Count(containerLogs(t, sidecar), released)
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		eventually(t, r.within(time.Minute), "the paused run released", func() error {
			if strings.Count(containerLogs(t, sidecar), released) == gone {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}
	t.Fatal("the manager's sidecar never paused in a run of files")
	return ""
}

// testSwarmRollingUpdate: a backup whose task is replaced while it runs (docker service update
// --force: a rolling update) fails with that reason and publishes nothing.
func testSwarmRollingUpdate(t *testing.T, r *swarmRig) {
	dir := t.TempDir()
	release := filepath.Join(t.TempDir(), "release")
	before := r.container(t, manager, "agent")
	p := startFaultEnv(t, []string{"DOCKER_BACKUP_FAULT_RELEASE=" + release}, "backup-streamed",
		"run", "-p", r.stack, "--no-sidecar", "--to", dir, "agent")
	p.waitPoint("backup-streamed")
	docker(t, "service", "update", "--detach", "--force", r.stack+"_agent")
	eventually(t, r.within(3*time.Minute), "the manager's agent task replaced", func() error {
		if ids := r.containers(t, manager, "agent"); len(ids) != 1 || strings.HasPrefix(before, ids[0]) || strings.HasPrefix(ids[0], before) {
			return fmt.Errorf("running agent containers on the manager: %q (before: %s)", ids, before)
		}
		return nil
	})
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code == 0 {
		t.Fatalf("the backup of a task replaced while it ran succeeded:\n%s", p.err.String())
	}
	if e := p.err.String(); !strings.Contains(e, "swarm task") || !strings.Contains(e, "during the backup") || !strings.Contains(e, "nothing was published") {
		t.Errorf("the failure does not say the task was replaced:\n%s", p.err.String())
	}
	if ms := faultBackups(t, dir); len(ms) != 0 {
		t.Errorf("a backup was published: %+v", ms)
	}
}
