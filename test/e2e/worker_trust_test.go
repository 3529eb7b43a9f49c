package e2e

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// Issue 26, the worker's and the volume data paths' part: what a backup that is not trusted
// may restore, hard links between paths, what a worker container sees and may do, and a
// worker that is required but cannot run.

// sbinTool finds a program of the host that may be in an sbin directory outside PATH.
func sbinTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s is needed for this test (Debian: libcap2-bin; test/setup.sh installs it)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// getcap is what getcap(8) says of file's capabilities ("" when it has none).
func getcap(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command(sbinTool(t, "getcap"), file).CombinedOutput()
	if err != nil {
		t.Fatalf("getcap %s: %v\n%s", file, err, out)
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), file))
}

// setcap gives each of files the capabilities caps (setcap's form; "-r" removes them).
func setcap(t *testing.T, caps string, files ...string) {
	t.Helper()
	for _, f := range files {
		if caps == "-r" && getcap(t, f) == "" {
			continue // setcap -r fails on a file without capabilities
		}
		if out, err := exec.Command(sbinTool(t, "setcap"), caps, f).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s %s: %v\n%s", caps, f, err, out)
		}
	}
}

// unsignedCopy copies the backup key of dir into a new directory with its manifest's
// signature removed (as a forger, or a host without the key, leaves it) and returns that
// directory.
func unsignedCopy(t *testing.T, dir, key string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{key, artifact.ChunksKey(key), artifact.ManifestKey(key)} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == artifact.ManifestKey(key) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["signature"]; !ok {
				t.Fatalf("the manifest of %s is not signed to begin with", key)
			}
			delete(m, "signature")
			if b, err = json.MarshalIndent(m, "", "  "); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestVolumeFileCapabilitiesNeedASignature: a file with cap_setuid (setuid root by another
// name) keeps it through a signed backup and restore, on every data path; restored from the
// same backup unsigned (--allow-unsigned), the file comes back without it, with a warning —
// through the worker (staged) and through the Engine's archive API alike. getcap says.
func TestVolumeFileCapabilitiesNeedASignature(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	sh := func(script string) string { return docker(t, "exec", filler, "sh", "-c", script) }
	// ping is a small file, big one the worker writes in chunks: both ways of writing a file.
	sh("printf '#!/bin/sh\\n' > /data/ping && head -c 3000000 /dev/urandom > /data/big && chmod 755 /data/ping /data/big")
	host := volumeDir(t, vol)
	capped := []string{filepath.Join(host, "ping"), filepath.Join(host, "big")}
	sums := func() string { return sh("cd /data && sha256sum ping big && stat -c '%n %a %u:%g' ping big") }
	before := sums()

	for _, bp := range []struct{ name, mode string }{{"host", "auto"}, {"worker", "on"}, {"archive", "off"}} {
		setcap(t, "-r", capped...)
		setcap(t, "cap_setuid+ep", capped...)
		for _, f := range capped {
			if got := getcap(t, f); got != "cap_setuid=ep" {
				t.Fatalf("getcap %s = %q after setcap", f, got)
			}
		}
		dir := t.TempDir()
		backupWithEnv(t, dataPathEnv(bp.mode), "run", "files", "--project", p.name, "--to", dir)
		key := onlyBackup(t, dir).Artifact
		unsigned := unsignedCopy(t, dir, key)
		for _, rp := range []struct{ name, mode string }{{"worker", "auto"}, {"archive", "off"}} {
			for _, signed := range []bool{true, false} {
				what := fmt.Sprintf("backup read by the %s, restored by the %s, signed %v", bp.name, rp.name, signed)
				setcap(t, "-r", capped...)
				sh("echo changed > /data/ping")
				args := []string{"restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes"}
				if !signed {
					args = []string{"restore", key, "--from", unsigned, "--to", "files", "--project", p.name, "--yes", "--allow-unsigned"}
				}
				_, stderr, err := dockerCmd(dataPathEnv(rp.mode), append([]string{"backup"}, args...)...)
				if err != nil {
					t.Fatalf("%s: %v\n%s", what, err, stderr)
				}
				if after := sums(); after != before {
					t.Errorf("%s: the files are not the backup's:\n%s", what, diffLines(before, after))
				}
				want := "cap_setuid=ep"
				if !signed {
					want = ""
					mustContain(t, stderr, "estored without the extended attributes that grant privileges", "security.capability of data/")
				}
				for _, f := range capped {
					if got := getcap(t, f); got != want {
						t.Errorf("%s: getcap %s = %q, want %q", what, filepath.Base(f), got, want)
					}
				}
			}
		}
	}
}

// TestVolumeHardLinkBetweenPaths: a job's paths are two directories of one volume with a hard
// link between them. On every data path the backup restores (each path's archive holds the
// file whole), the tree is as it was — the two names become two files, each with the content
// — and verify passes on the tree digest.
func TestVolumeHardLinkBetweenPaths(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	sh := func(script string) string { return docker(t, "exec", filler, "sh", "-c", script) }
	// Made anew for each data path: the same tree whatever the one before left.
	fill := func() {
		sh(`rm -rf /data/a /data/b /data/c && mkdir -p /data/a /data/b /data/c && printf shared > /data/a/x && ln /data/a/x /data/b/y &&
			printf own > /data/b/z && ln /data/b/z /data/b/z2 && printf other > /data/c/w && chown 1234:5678 /data/a/x && chmod 640 /data/a/x`)
	}
	fill()
	// Types, modes, owners, sizes and contents; link counts apart (the link between the paths
	// is not kept: two paths, two archives).
	tree := func() string {
		return sh(`cd /data && find a b c -printf '%p|%y|%m|%U|%G|%s\n' | LC_ALL=C sort && find a b c -type f | LC_ALL=C sort | xargs sha256sum && stat -c '%n %h' b/z b/z2`)
	}
	before := tree()
	for _, dp := range dataPaths {
		t.Run(dp.name, func(t *testing.T) {
			env := dataPathEnv(dp.mode)
			dir := t.TempDir()
			fill()
			backupWithEnv(t, env, "run", "files", "--project", p.name, "--to", dir, "--paths", "/data/a,/data/b")
			m := onlyBackup(t, dir)
			if m.Source["data_path"] != dp.name || m.Source["paths"] != "/data/a,/data/b" {
				t.Fatalf("manifest: data path %q, paths %q", m.Source["data_path"], m.Source["paths"])
			}
			sh("rm -rf /data/a /data/b")
			_, stderr, err := dockerCmd(env, "backup", "restore", m.Artifact, "--from", dir, "--to", "files", "--project", p.name, "--yes")
			if err != nil {
				t.Fatalf("the backup does not restore: %v\n%s", err, stderr)
			}
			if after := tree(); after != before {
				t.Errorf("the tree after the restore:\n%s", diffLines(before, after))
			}
			mustContain(t, backupWithEnv(t, env, "verify", m.Artifact, "--from", dir), "PASS")
		})
	}
}

// workerView is what the Engine and the kernel say of a running worker container.
type workerView struct {
	HostConfig struct {
		ReadonlyRootfs bool
		SecurityOpt    []string
	}
	State  struct{ Pid int }
	Mounts []struct {
		Type, Name, Source, Destination string
		RW                              bool
	}
	// From /proc/PID: the effective and bounding capability sets, no_new_privs, and whether
	// the root file system is mounted read-only.
	capEff, capBnd string
	noNewPrivs     bool
	rootRO         bool
}

func inspectWorker(t *testing.T, id string) workerView {
	t.Helper()
	var vs []workerView
	if err := json.Unmarshal([]byte(docker(t, "inspect", id)), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	v := vs[0]
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.State.Pid))
	if err != nil {
		t.Fatalf("the worker's process: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, val, _ := strings.Cut(l, ":")
		switch val = strings.TrimSpace(val); k {
		case "CapEff":
			v.capEff = val
		case "CapBnd":
			v.capBnd = val
		case "NoNewPrivs":
			v.noNewPrivs = val == "1"
		}
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", v.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
			v.rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	return v
}

// Capability masks as /proc shows them: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4,
// MKNOD 27, SETFCAP 31.
const (
	capsRead           = "0000000000000002"
	capsRestore        = "000000000000001b"
	capsTrustedRestore = "000000008800001b"
)

// checkWorker checks a running worker's confinement: exactly the capabilities caps (effective
// and bounding), no new privileges, a read-only root, and exactly the mounts want
// (destination → "volume NAME ro|rw", "bind SOURCE-PREFIX", "anonymous volume").
func checkWorker(t *testing.T, id, caps string, want map[string]string) workerView {
	t.Helper()
	v := inspectWorker(t, id)
	if v.capEff != caps || v.capBnd != caps {
		t.Errorf("worker capabilities: effective %s, bounding %s; want %s", v.capEff, v.capBnd, caps)
	}
	if !v.noNewPrivs || !slices.Contains(v.HostConfig.SecurityOpt, "no-new-privileges") {
		t.Errorf("worker without no-new-privileges: kernel %v, options %v", v.noNewPrivs, v.HostConfig.SecurityOpt)
	}
	if !v.rootRO || !v.HostConfig.ReadonlyRootfs {
		t.Errorf("worker root file system not read-only: mounted ro %v, ReadonlyRootfs %v", v.rootRO, v.HostConfig.ReadonlyRootfs)
	}
	got := map[string]string{}
	for _, m := range v.Mounts {
		mode := map[bool]string{true: "rw", false: "ro"}[m.RW]
		switch {
		case m.Type == "volume" && len(m.Name) == 64 && !strings.Contains(m.Name, "_"):
			got[m.Destination] = "anonymous volume"
		case m.Type == "volume":
			got[m.Destination] = "volume " + m.Name + " " + mode
		case m.Type == "tmpfs":
			got[m.Destination] = "tmpfs " + mode
		default:
			got[m.Destination] = m.Type + " " + m.Source
			if w := want[m.Destination]; strings.HasPrefix(w, "bind ") && strings.HasPrefix(got[m.Destination], w) {
				got[m.Destination] = w
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("worker mounts:\n%v\nwant:\n%v", got, want)
	}
	return v
}

// TestWorkerConfinement: a worker container of the plugin, held in a backup and in restores
// (the kernel's view of its process, the Engine's of its mounts): only DAC_OVERRIDE to read;
// for a restore also CHOWN, FOWNER and FSETID, and MKNOD and SETFCAP only for a signed
// backup; no new privileges; a read-only root; the service's volumes (read-only for a
// backup), its own socket directory and, for a restore, its own staging volume, which is
// removed with it. The restores still give back the tree.
func TestWorkerConfinement(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	// No set-user-ID file: the backup is also restored unsigned.
	f.sh("chmod 0750 /data/dir/sub/numbers.txt")
	backedUp := f.tree()
	dir := t.TempDir()
	volumes := func(mode string) map[string]string {
		return map[string]string{"/data": "volume " + f.p.name + "_data " + mode, "/config": "volume " + f.p.name + "_config " + mode,
			"/.docker-backup-socket": "bind " + filepath.Join(os.TempDir(), "docker-backup-worker-")}
	}
	// held runs the fault plugin to point, checks the worker there, and lets it go on.
	held := func(point, caps string, mounts map[string]string, args ...string) workerView {
		t.Helper()
		release := filepath.Join(t.TempDir(), "release")
		proc := startFaultEnv(t, []string{"DOCKER_BACKUP_WORKER=on", "DOCKER_BACKUP_FAULT_RELEASE=" + release}, point, args...)
		proc.waitPoint(point)
		workers := workersOf(t, f.p.name, "files")
		if len(workers) != 1 {
			t.Fatalf("%d worker containers at %s, want 1", len(workers), point)
		}
		v := checkWorker(t, workers[0], caps, mounts)
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code := proc.wait(); code != 0 {
			t.Fatalf("%s (exit %d):\n%s", strings.Join(args, " "), code, proc.err.String())
		}
		return v
	}
	held("backup-stream", capsRead, volumes("ro"), "run", "files", "--project", f.p.name, "--to", dir)
	ms := faultBackups(t, dir)
	if len(ms) != 1 {
		t.Fatalf("%d backups, want 1", len(ms))
	}
	key := ms[0].Artifact

	restoring := volumes("rw")
	restoring["/.docker-backup-staging"] = "anonymous volume"
	for _, signed := range []bool{true, false} {
		f.sh(changeScript)
		args, caps := []string{"restore", key, "--from", dir, "--to", "files", "--project", f.p.name, "--yes"}, capsTrustedRestore
		if !signed {
			args, caps = []string{"restore", key, "--from", unsignedCopy(t, dir, key), "--to", "files", "--project", f.p.name, "--yes", "--allow-unsigned"}, capsRestore
		}
		v := held("restore-verified", caps, restoring, args...)
		if after := f.tree(); after != backedUp {
			t.Errorf("signed %v: the tree after the restore:\n%s", signed, diffLines(backedUp, after))
		}
		for _, m := range v.Mounts {
			if m.Destination == "/.docker-backup-staging" {
				eventually(t, 30*time.Second, "the worker's staging volume removed", func() error {
					if _, _, err := dockerCmd(nil, "volume", "inspect", m.Name); err == nil {
						return fmt.Errorf("the volume %s is still there", m.Name)
					}
					return nil
				})
			}
		}
	}
	noWorkersLeft(t, f.p.name, "files")
}

// TestSidecarWorkerSeesOnlyItsSocket: a sidecar's volume job whose path is /run, holding a
// directory docker-backup (where workers used to see their socket directory, with the whole
// state volume mounted there, and where a restore's worker left a mount point). The backup
// holds the service's /run with its docker-backup directory and file, and nothing of the
// sidecar's. A restore's worker, held before its commit, mounts the service's volume and its
// own session directory — a directory of the state volume on the engine's host, never the
// state volume with the signing key and the catalog — with the plugin's confinement; the
// restore then gives back the files.
func TestSidecarWorkerSeesOnlyItsSocket(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	sidecar, backups := startSidecarImage(t, p, faultSidecarImage(t), "-e", "DOCKER_BACKUP_FAULT=restore-verified",
		"-e", "DOCKER_BACKUP_FAULT_ARMED=/var/lib/docker-backup/fault-armed", "-e", "DOCKER_BACKUP_FAULT_RELEASE=/var/lib/docker-backup/fault-release")
	state := volumeDir(t, p.name+"_backup-state")
	run := p.volume("run")
	p.service("app", pauseImage, "-v", run+":/run", "--label", "docker-backup.enable=true",
		"--label", "docker-backup.strategy=volume", "--label", "docker-backup.paths=/run")
	files := map[string]string{"app.pid": "1\n", "docker-backup/mine": "the service's\n"}
	for name, content := range files {
		file := filepath.Join(volumeDir(t, run), name)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	backup(t, "run", "app", "--project", p.name)
	ms := sidecarBackups(t, p.name, "app")
	if len(ms) != 1 {
		t.Fatalf("%d backups, want 1", len(ms))
	}
	raw := decompress(t, filepath.Join(volumeDir(t, backups), ms[0].Key))
	var names []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if got, want := strings.Join(names, " "), "run/ run/app.pid run/docker-backup/ run/docker-backup/mine"; got != want {
		t.Errorf("the backup of /run holds %s, want %s (the service's files, nothing of the sidecar's)", got, want)
	}

	for name := range files {
		if err := os.WriteFile(filepath.Join(volumeDir(t, run), name), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	armFault(t, p)
	done := pluginInBackground(t, "restore", ms[0].Key, "--to", "app", "--project", p.name, "--yes")
	waitSidecarPoint(t, sidecar, "restore-verified", done)
	workers := workersOf(t, p.name, "app")
	if len(workers) != 1 {
		t.Fatalf("%d worker containers, want 1", len(workers))
	}
	checkWorker(t, workers[0], capsTrustedRestore, map[string]string{"/run": "volume " + run + " rw",
		"/.docker-backup-socket": "bind " + filepath.Join(state, "workers", "docker-backup-worker-"), "/.docker-backup-staging": "anonymous volume",
		// The sidecar image's declared volume (its state directory), covered: no volume made.
		"/var/lib/docker-backup": "tmpfs ro"})
	if err := os.WriteFile(filepath.Join(state, "fault-release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the restore: %v\n%s", err, containerLogs(t, sidecar))
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the restore did not end")
	}
	for name, content := range files {
		if b, err := os.ReadFile(filepath.Join(volumeDir(t, run), name)); err != nil || string(b) != content {
			t.Errorf("%s after the restore: %q, %v; want %q", name, b, err, content)
		}
	}
}

// TestWorkerRequiredButImpossible: DOCKER_BACKUP_WORKER=on with a plugin built with cgo
// (dynamically linked: it cannot be its own worker image) fails, saying why and what to do —
// it does not back up or restore through the Engine's archive API instead. Nothing is
// stored, nothing restored, the service runs.
func TestWorkerRequiredButImpossible(t *testing.T) {
	t.Parallel()
	config := t.TempDir()
	bin := filepath.Join(config, "cli-plugins", "docker-backup")
	build := exec.Command("go", "build", "-o", bin, "./cmd/docker-backup")
	build.Dir = fixtureRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin with cgo: %v\n%s", err, out)
	}
	if ef, err := elf.Open(bin); err != nil || !slices.ContainsFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Fatalf("the plugin built with cgo is not dynamically linked here (%v): it could be its own worker", err)
	}
	// The tests' signing key, so that the restore is refused for the worker alone.
	key, err := os.ReadFile(filepath.Join(dockerConfig, "docker-backup", "signing.key"))
	if err != nil {
		pluginKey(t)
		key, err = os.ReadFile(filepath.Join(dockerConfig, "docker-backup", "signing.key"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(config, "docker-backup"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(config, "docker-backup", "signing.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	cgo := func(args ...string) (string, error) {
		cmd := exec.Command("docker", append([]string{"backup"}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+config, "DOCKER_BACKUP_WORKER=on")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	why := []string{"a worker container is required (DOCKER_BACKUP_WORKER=on)", "dynamically linked", "CGO_ENABLED=0", "DOCKER_BACKUP_WORKER=auto"}

	f := newVolumeFixture(t)
	empty := t.TempDir()
	out, err := cgo("run", "files", "--project", f.p.name, "--to", empty)
	if err == nil {
		t.Fatalf("the backup succeeded without a worker:\n%s", out)
	}
	mustContain(t, out, why...)
	if files := filesUnder(t, empty); len(files) != 0 {
		t.Errorf("the failed backup stored %v", files)
	}

	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir)
	f.sh(changeScript)
	changed := f.tree()
	startedAt := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app)
	out, err = cgo("restore", onlyBackup(t, dir).Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	if err == nil {
		t.Fatalf("the restore succeeded without a worker:\n%s", out)
	}
	mustContain(t, out, why...)
	if after := f.tree(); after != changed {
		t.Errorf("the refused restore changed the data:\n%s", diffLines(changed, after))
	}
	if now := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app); now != startedAt || !running(t, f.app) {
		t.Error("the refused restore stopped or restarted the service")
	}
}

// TestWorkerArchivesOnlyTheServiceMounts: a job path /etc on a volume of the service: in a
// worker container the engine mounts its own files over it (/etc/hosts, /etc/hostname,
// /etc/resolv.conf: the worker's, not the service's data). The worker's backup stays on the
// service's mounts: none of those is archived, the service's own files are.
func TestWorkerArchivesOnlyTheServiceMounts(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	etc := p.volume("etc")
	// A new volume mounted at /etc is filled with the image's /etc.
	app := p.service("app", plainImage, "-v", etc+":/etc")
	docker(t, "exec", app, "sh", "-c", "echo mine > /etc/app.conf")
	dir := t.TempDir()
	backupWithEnv(t, dataPathEnv("on"), "run", "app", "--project", p.name, "--to", dir, "--paths", "/etc")
	m := onlyBackup(t, dir)
	raw := decompress(t, filepath.Join(dir, m.Artifact))
	var names []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if !slices.Contains(names, "etc/app.conf") || !slices.Contains(names, "etc/passwd") {
		t.Errorf("the backup lacks the service's own files: %v", names)
	}
	for _, foreign := range []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"} {
		if slices.Contains(names, foreign) {
			t.Errorf("the backup holds %s, a file the engine mounted into the worker", foreign)
		}
	}
}
