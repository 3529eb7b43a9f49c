package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Swarm rig: the host's engine is the manager of a two-node swarm, a Docker engine in a
// container (test/fixtures/engine: Debian trixie's Engine 26.1) the worker. A MinIO on the
// docker0 gateway is the target the sidecars of both nodes share.

const (
	// swarmWorker names the worker's container and its host name: a leftover of a run that
	// died is recognised by it and removed by the next rig.
	swarmWorker = "docker-backup-e2e-swarm-node2"
	// swarmNodeLabel marks the host's node as the rig's: a swarm without it is someone
	// else's and is never left.
	swarmNodeLabel = "org.docker-backup.e2e-rig"
	// managerSock is where the sidecars reach the manager's API: on the worker a bind mount
	// of the host's socket into the engine's container, on the host a symlink to it.
	managerSock = "/run/docker-backup-manager.sock"
	// swarmLock serialises rigs of several test runs on one host (a swarm is per engine).
	swarmLock     = "/tmp/docker-backup-e2e-swarm.lock"
	stackPrefix   = "e2e-swarm-"
	workerAPIPort = "2375"
)

// swarmRig is the two-node swarm of TestSwarm and the stack deployed on it.
type swarmRig struct {
	t          *testing.T
	stack      string
	dir        string // the stack file and its secret files
	gateway    string // docker0's gateway: the manager's advertise address, MinIO's address
	workerIP   string
	workerHost string // DOCKER_HOST of the worker's engine
	manager    string // the host's node name (docker info .Name)
	worker     string // the worker's node name
	minio      *minioServer
	bucket     string
	sidecar    string // the sidecar image (with fault points)
	dbPassword string

	lock      *os.File
	hadGWBr   bool // docker_gwbridge existed before the rig
	tearOnce  sync.Once
	deployed  bool
	symlinked bool
}

// startSwarmRig makes the swarm, loads the images into the worker, starts MinIO and
// deploys the stack; t.Cleanup tears it all down.
func startSwarmRig(t *testing.T) *swarmRig {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	r := &swarmRig{t: t, stack: stackPrefix + hex.EncodeToString(b), dir: t.TempDir(), bucket: "swarm"}
	r.takeLock()
	t.Cleanup(r.teardown)
	r.removeLeftovers()
	_, _, err := dockerCmd(nil, "network", "inspect", "docker_gwbridge")
	r.hadGWBr = err == nil
	r.gateway = strings.TrimSpace(docker(t, "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"))
	r.manager = strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))

	r.sidecar = faultSidecarImage(t)
	images := []string{r.sidecar, postgresImage, plainImage}
	r.startWorker(fixtureImage("DOCKER_BACKUP_TEST_ENGINE_IMAGE", "engine")(t))
	r.makeSwarm()
	for _, img := range images {
		r.loadImage(img)
	}
	if err := os.Symlink("/var/run/docker.sock", managerSock); err != nil {
		t.Fatalf("swarm rig: the manager socket's path on the host: %v", err)
	}
	r.symlinked = true
	r.minio = startMinioOn(t, r.gateway)
	r.minio.bucket(r.bucket)
	r.deploy()
	return r
}

// takeLock waits for another test run's rig on this host to end.
func (r *swarmRig) takeLock() {
	r.t.Helper()
	f, err := os.OpenFile(swarmLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Minute)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("swarm rig: another test run held %s for 30 minutes", swarmLock)
		}
		time.Sleep(time.Second)
	}
	r.lock = f
}

// removeLeftovers removes what a rig that died left: its worker container, the host's swarm
// (only when the rig's label marks it), its stacks' containers and volumes, the symlink.
func (r *swarmRig) removeLeftovers() {
	r.t.Helper()
	if state := swarmState(r.t); state != "inactive" {
		labels := strings.TrimSpace(docker(r.t, "node", "inspect", "self", "-f", "{{json .Spec.Labels}}"))
		if !strings.Contains(labels, swarmNodeLabel) {
			r.t.Fatalf("swarm rig: this engine is already in swarm mode (%s) and not by this test: leave it (docker swarm leave --force) or run the tests on another engine", state)
		}
		r.t.Logf("swarm rig: leaving the swarm an earlier run left")
		docker(r.t, "swarm", "leave", "--force")
	}
	if _, _, err := dockerCmd(nil, "inspect", swarmWorker); err == nil {
		r.t.Logf("swarm rig: removing the worker an earlier run left")
		docker(r.t, "rm", "-f", "-v", swarmWorker)
	}
	r.removeStackLeftovers("")
	// The rig's symlink, or the empty directory Docker makes for a bind mount of a missing path.
	if fi, err := os.Lstat(managerSock); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 && !fi.IsDir() {
			r.t.Fatalf("swarm rig: %s exists and is not the rig's symlink", managerSock)
		}
		if err := os.Remove(managerSock); err != nil {
			r.t.Fatalf("swarm rig: %s is in the way: %v", managerSock, err)
		}
	}
}

// removeStackLeftovers removes the host's containers and volumes of the stack (of every
// rig's stack when stack is empty).
func (r *swarmRig) removeStackLeftovers(stack string) {
	ours := func(ns string) bool { return ns == stack || (stack == "" && strings.HasPrefix(ns, stackPrefix)) }
	for _, kind := range []string{"ps -a", "volume ls"} {
		args := append(strings.Fields(kind), "--filter", "label=com.docker.stack.namespace",
			"--format", `{{.Name}}|{{.Label "com.docker.stack.namespace"}}`)
		out, _, _ := dockerCmd(nil, args...)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, ns, _ := strings.Cut(line, "|")
			if name == "" || !ours(ns) {
				continue
			}
			if kind == "ps -a" {
				_, _, _ = dockerCmd(nil, "rm", "-f", "-v", name)
			} else {
				_, _, _ = dockerCmd(nil, "volume", "rm", "-f", name)
			}
		}
	}
}

func swarmState(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(docker(t, "info", "--format", "{{.Swarm.LocalNodeState}}"))
}

// startWorker runs the engine fixture and waits until its API answers. Its dockerd gives
// its socket the host socket's group, so that one sidecar user reaches both sockets.
func (r *swarmRig) startWorker(engine string) {
	r.t.Helper()
	docker(r.t, "run", "-d", "--name", swarmWorker, "--hostname", swarmWorker,
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/var/run/docker.sock:"+managerSock,
		"--label", swarmNodeLabel+"=worker", engine, "--group", socketGroup(r.t))
	r.workerIP = strings.TrimSpace(docker(r.t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", swarmWorker))
	r.workerHost = "tcp://" + r.workerIP + ":" + workerAPIPort
	eventually(r.t, r.within(2*time.Minute), "the worker's engine answering", func() error {
		if _, stderr, err := r.onWorker("version", "--format", "{{.Server.Version}}"); err != nil {
			logs, _, _ := dockerCmd(nil, "logs", "--tail", "20", swarmWorker)
			return fmt.Errorf("%v: %s\nengine log: %s", err, stderr, logs)
		}
		return nil
	})
	r.worker = strings.TrimSpace(r.workerDocker("info", "-f", "{{.Name}}"))
}

// makeSwarm makes the host the manager and joins the worker. The join token goes to the
// worker's API in a request body, never in a command line.
func (r *swarmRig) makeSwarm() {
	r.t.Helper()
	docker(r.t, "swarm", "init", "--advertise-addr", r.gateway)
	docker(r.t, "node", "update", "--label-add", swarmNodeLabel+"=manager", strings.TrimSpace(docker(r.t, "info", "-f", "{{.Swarm.NodeID}}")))
	token := strings.TrimSpace(docker(r.t, "swarm", "join-token", "-q", "worker"))
	body, _ := json.Marshal(map[string]any{"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": r.workerIP,
		"RemoteAddrs": []string{r.gateway + ":2377"}, "JoinToken": token})
	resp, err := http.Post("http://"+r.workerIP+":"+workerAPIPort+"/v1.41/swarm/join", "application/json", bytes.NewReader(body))
	if err != nil {
		r.t.Fatalf("swarm rig: joining the worker: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("swarm rig: joining the worker: %s: %s", resp.Status, msg)
	}
	eventually(r.t, r.within(time.Minute), "both nodes ready", func() error {
		out := docker(r.t, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
		if !strings.Contains(out, r.worker+" Ready") || !strings.Contains(out, r.manager+" Ready Leader") {
			return fmt.Errorf("nodes: %s", out)
		}
		return nil
	})
}

// loadImage copies an image from the host into the worker's engine.
func (r *swarmRig) loadImage(img string) {
	r.t.Helper()
	if _, _, err := r.onWorker("image", "inspect", img); err == nil {
		return
	}
	save := exec.Command("docker", "save", img)
	load := exec.Command("docker", "load", "-q")
	load.Env = append(os.Environ(), "DOCKER_HOST="+r.workerHost)
	pipe, err := save.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	load.Stdin = pipe
	var saveErr, loadOut bytes.Buffer
	save.Stderr, load.Stdout, load.Stderr = &saveErr, &loadOut, &loadOut
	if err := save.Start(); err != nil {
		r.t.Fatal(err)
	}
	loadErr := load.Run()
	if err := save.Wait(); err != nil || loadErr != nil {
		r.t.Fatalf("swarm rig: loading %s into the worker: save: %v %s; load: %v %s", img, err, saveErr.String(), loadErr, loadOut.String())
	}
}

// onWorker runs the docker CLI against the worker's engine.
func (r *swarmRig) onWorker(args ...string) (string, string, error) {
	return dockerCmd([]string{"DOCKER_HOST=" + r.workerHost}, args...)
}

// workerDocker is onWorker failing the test on error.
func (r *swarmRig) workerDocker(args ...string) string {
	r.t.Helper()
	out, stderr, err := r.onWorker(args...)
	if err != nil {
		r.t.Fatalf("docker -H %s %s: %v\n%s", r.workerHost, strings.Join(args, " "), err, stderr)
	}
	return out
}

// teardown removes the stack, the swarm, the worker, the volumes and the symlink: the host
// ends out of swarm mode. It runs once, from a subtest that checks it or from t.Cleanup.
func (r *swarmRig) teardown() {
	r.tearOnce.Do(func() {
		t := r.t
		if r.deployed {
			// The stack's network is removed once its tasks are gone: until then stack rm
			// fails ("network … is in use by task …"); again until it has nothing left.
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
				_, stderr, err := dockerCmd(nil, "stack", "rm", r.stack)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("swarm rig: docker stack rm %s: %v %s", r.stack, err, stderr)
					break
				}
			}
			r.waitStackGone()
		}
		if r.workerHost != "" {
			_, _, _ = r.onWorker("swarm", "leave", "--force")
		}
		if swarmState(t) != "inactive" {
			if _, stderr, err := dockerCmd(nil, "swarm", "leave", "--force"); err != nil {
				t.Errorf("swarm rig: leaving the swarm: %v %s", err, stderr)
			}
		}
		_, _, _ = dockerCmd(nil, "rm", "-f", "-v", swarmWorker)
		// The worker containers a killed sidecar left on the host hold the stack's volumes.
		removeScratch(r.stack)
		r.removeStackLeftovers(r.stack)
		if !r.hadGWBr {
			_, _, _ = dockerCmd(nil, "network", "rm", "docker_gwbridge")
		}
		if r.symlinked {
			_ = os.Remove(managerSock)
		}
		if r.lock != nil {
			_ = r.lock.Close()
		}
	})
}

// waitStackGone waits until no container of the stack is left on either node.
func (r *swarmRig) waitStackGone() {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		host, _, _ := dockerCmd(nil, "ps", "-aq", "--filter", "label=com.docker.stack.namespace="+r.stack)
		worker, _, _ := r.onWorker("ps", "-aq", "--filter", "label=com.docker.stack.namespace="+r.stack)
		if strings.TrimSpace(host+worker) == "" {
			return
		}
		if time.Now().After(deadline) {
			r.t.Errorf("swarm rig: containers of %s still there 2 minutes after stack rm: host %q, worker %q", r.stack, host, worker)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The schedules of the stack's jobs. files and the sidecar's fault point: see TestSwarm.
const (
	dbSchedule    = "@every 10s"
	filesSchedule = "@every 15s"
	otherSchedule = "@every 20s"
)

// idleCommand keeps a plain container running and stops it at once on SIGTERM.
const idleCommand = `["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]`

// deploy writes the stack file and its secrets and deploys it.
func (r *swarmRig) deploy() {
	r.t.Helper()
	r.dbPassword = "pw-" + hex.EncodeToString([]byte(r.stack))
	secret := strings.TrimPrefix(r.minio.env()[1], "AWS_SECRET_ACCESS_KEY=")
	for name, v := range map[string]string{"s3_secret": secret, "db_password": r.dbPassword} {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(v), 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	file := filepath.Join(r.dir, "stack.yml")
	if err := os.WriteFile(file, []byte(r.stackFile()), 0o600); err != nil {
		r.t.Fatal(err)
	}
	docker(r.t, "stack", "deploy", "--resolve-image", "never", "-c", file, r.stack)
	r.deployed = true
}

// stackFile is the stack: the sidecar on every node (as its image's user, with the group of
// the Docker sockets: stacks have no group_add), db on the worker (its password a swarm
// secret, labels on the service), files on the manager (stop: true, labels on its
// containers), agent on every node, web three times.
func (r *swarmRig) stackFile() string {
	svcLabels := func(strategy, schedule string) string {
		return fmt.Sprintf(`
        docker-backup.enable: "true"
        docker-backup.strategy: %s
        docker-backup.schedule: "%s"`, strategy, schedule)
	}
	return fmt.Sprintf(`version: "3.8"
services:
  backup:
    image: %[1]s
    user: "65532:%[2]s"
    environment:
      DOCKER_BACKUP_SWARM_MANAGER: unix://%[3]s
      DOCKER_BACKUP_TARGET: s3://%[4]s?endpoint=http://%[5]s
      AWS_ACCESS_KEY_ID: %[6]s
      AWS_SECRET_ACCESS_KEY_FILE: /run/secrets/s3_secret
      DOCKER_BACKUP_FAULT: backup-streamed
      DOCKER_BACKUP_FAULT_ARMED: /var/lib/docker-backup/fault-armed
      DOCKER_BACKUP_FAULT_RELEASE: /var/lib/docker-backup/fault-release
    secrets: [s3_secret]
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - %[3]s:%[3]s
      - backup-state:/var/lib/docker-backup
    deploy:
      mode: global
  db:
    image: %[7]s
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
    secrets: [db_password]
    volumes: [pgdata:/var/lib/postgresql/data]
    deploy:
      replicas: 1
      placement: {constraints: [node.role == worker]}
      labels:%[9]s
  files:
    image: %[8]s
    command: %[13]s
    volumes: [files-data:/data]
    labels:%[10]s
      docker-backup.stop: "true"
    deploy:
      replicas: 1
      placement: {constraints: [node.role == manager]}
  agent:
    image: %[8]s
    command: %[13]s
    volumes: [agent-data:/data]
    deploy:
      mode: global
      labels:%[11]s
  web:
    image: %[8]s
    command: %[13]s
    volumes: [web-data:/data]
    deploy:
      replicas: 3
      labels:%[12]s
secrets:
  s3_secret: {file: ./s3_secret}
  db_password: {file: ./db_password}
volumes: {backup-state: {}, pgdata: {}, files-data: {}, agent-data: {}, web-data: {}}
`, r.sidecar, socketGroup(r.t), managerSock, r.bucket, r.minio.addr, r.minio.user, postgresImage, plainImage,
		svcLabels("postgres", dbSchedule), strings.ReplaceAll(svcLabels("volume", filesSchedule), "\n        ", "\n      "),
		svcLabels("volume", otherSchedule), svcLabels("volume", otherSchedule), idleCommand)
}
