package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
)

// TestBackupToSeveralTargets: one run writes the same backup to a directory, MinIO and a
// small tmpfs that fills up in the middle: the run says which target failed (exit status 1),
// the full one holds nothing, the others hold the same verified backup, which restores.
func TestBackupToSeveralTargets(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("offsite")
	small := smallDisk(t, "12m")
	local := t.TempDir()
	p := newProject(t)
	app := p.service("app", plainImage, append([]string{"-v", p.volume("data") + ":/data"}, idle...)...)
	docker(t, "exec", app, "sh", "-c", "head -c 30000000 /dev/urandom > /data/big && echo hello > /data/small")
	want := docker(t, "exec", app, "sh", "-c", "cd /data && md5sum big small")

	// Two targets that work: exit 0, both listed, the same bytes.
	out := backupWithEnv(t, m.env(), "run", "app", "--project", p.name, "--strategy", "volume", "--to", local, "--to", m.url("offsite/host1"))
	mustContain(t, out, "target   "+local, "target   s3://offsite/host1")
	onLocal, onS3 := listBackups(t, local), listBackupsWithEnv(t, m.env(), m.url("offsite/host1"))
	if len(onLocal) != 1 || len(onS3) != 1 || onLocal[0].SHA256 != onS3[0].SHA256 || onLocal[0].Artifact != onS3[0].Artifact {
		t.Fatalf("local %+v, S3 %+v: want the same backup on both", onLocal, onS3)
	}

	// A third target that fills up: stored on the two others, which the run says.
	out, stderr, err := dockerCmd(m.env(), "backup", "run", "app", "--project", p.name, "--strategy", "volume",
		"--to", local, "--to", small, "--to", m.url("offsite/host1"))
	if err == nil {
		t.Fatalf("a run with a full target succeeded:\n%s", out)
	}
	mustContain(t, out, "target   "+local+"\n", "target   "+small+": FAILED, nothing stored there", "no space left on device", "target   s3://offsite/host1 at ")
	mustContain(t, stderr, "is stored, but: stored on "+local+", s3://offsite/host1 at ", "but not on "+small+": writing", "no space left on device")
	if files := filesUnder(t, small); len(files) != 0 {
		t.Errorf("the full target holds %q", files)
	}
	onLocal, onS3 = listBackups(t, local), listBackupsWithEnv(t, m.env(), m.url("offsite/host1"))
	if len(onLocal) != 2 || len(onS3) != 2 || onLocal[0].SHA256 != onS3[0].SHA256 {
		t.Fatalf("after the partial run: local %d, S3 %d backups", len(onLocal), len(onS3))
	}

	// The copy on S3 restores to the original.
	docker(t, "exec", app, "sh", "-c", "rm /data/big && echo changed > /data/small")
	backupWithEnv(t, m.env(), "restore", onS3[0].Artifact, "--from", m.url("offsite/host1"), "--to", "app", "--project", p.name, "--yes")
	if got := docker(t, "exec", app, "sh", "-c", "cd /data && md5sum big small"); got != want {
		t.Errorf("restored from S3: %s, want %s", got, want)
	}
	if strings.Contains(stderr+out, m.secret) {
		t.Error("a credential was printed")
	}
}

// listBackupsWithEnv is listBackups of a target that needs credentials.
func listBackupsWithEnv(t *testing.T, env []string, from string) []artifact.Manifest {
	t.Helper()
	var ms []artifact.Manifest
	if err := json.Unmarshal([]byte(backupWithEnv(t, env, "ls", "--from", from, "--format", "json")), &ms); err != nil {
		t.Fatalf("decoding ls output: %v", err)
	}
	return ms
}

// TestSidecarSeveralTargets: a job with docker-backup.target=default,offsite writes every
// backup to both in one run; each target has its own retention (retention.offsite), runs,
// status line and metrics; when offsite fills up, its run fails and keeps its older backup,
// while default goes on.
func TestSidecarSeveralTargets(t *testing.T) {
	t.Parallel()
	small := smallDisk(t, "12m")
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=@every 3s", "docker-backup.target=default,offsite",
		"docker-backup.retention=3", "docker-backup.retention.offsite=1")
	docker(t, "exec", app, "sh", "-c", "echo small > /data/f")
	sidecar, backups := startSidecar(t, p, "-v", small+":/offsite", "-e", "DOCKER_BACKUP_TARGET_OFFSITE=/offsite")
	dir := volumeDir(t, backups)
	member := func(st control.Status, target string) *control.JobStatus {
		for i := range st.Jobs {
			if j := &st.Jobs[i]; j.Service == "app" && j.Job == "default" && j.Target == target {
				return j
			}
		}
		return nil
	}
	manifests := func(root string) []string {
		m, _ := filepath.Glob(filepath.Join(root, p.name, "app", "*.manifest.json"))
		return m
	}

	// Both targets, each with its retention; the same backups.
	eventually(t, 2*time.Minute, "runs on both targets and their retention", func() error {
		st := sidecarStatus(t, p.name)
		def, off := member(st, "default"), member(st, "offsite")
		if def == nil || off == nil {
			return fmt.Errorf("status lines %+v", st.Jobs)
		}
		if def.Runs["success"] < 4 || off.Runs["success"] < 4 {
			return fmt.Errorf("successful runs: default %d, offsite %d", def.Runs["success"], off.Runs["success"])
		}
		if n, m := len(manifests(dir)), len(manifests(small)); n != 3 || m != 1 {
			return fmt.Errorf("default holds %d backups (want 3), offsite %d (want 1)", n, m)
		}
		return nil
	})
	newestOff := filepath.Base(manifests(small)[0])
	if _, err := os.Stat(filepath.Join(dir, p.name, "app", newestOff)); err != nil {
		t.Errorf("offsite's backup %s is not on default: the runs did not write the same backup to both", newestOff)
	}
	st := sidecarStatus(t, p.name)
	if def, off := member(st, "default"), member(st, "offsite"); def.Retention != "3" || off.Retention != "1" {
		t.Errorf("retention: default %q, offsite %q", def.Retention, off.Retention)
	}
	mustContain(t, backup(t, "status", "-p", p.name), "default\n", "offsite\n")
	ip := strings.TrimSpace(docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", sidecar))
	metricsURL := "http://" + ip + ":9090/metrics"
	series := func(target string) string {
		return `docker_backup_last_run_success{backup_job="default",project="` + p.name + `",service="app",strategy="volume",target="` + target + `"}`
	}
	mustContain(t, httpGet(t, metricsURL), series("default")+" 1", series("offsite")+" 1")

	// offsite fills up: its runs fail and keep what it had; default goes on.
	docker(t, "exec", app, "sh", "-c", "head -c 20000000 /dev/urandom > /data/big")
	before := member(sidecarStatus(t, p.name), "default").Runs["success"]
	eventually(t, 2*time.Minute, "offsite failing, default going on", func() error {
		st := sidecarStatus(t, p.name)
		def, off := member(st, "default"), member(st, "offsite")
		if off.Last == nil || off.Last.Status != "failed" || !strings.Contains(off.Last.Error, "no space left on device") {
			return fmt.Errorf("offsite's last run: %+v", off.Last)
		}
		if def.Runs["success"] < before+2 || def.Last.Status != "success" {
			return fmt.Errorf("default: %d successful runs (before %d), last %+v", def.Runs["success"], before, def.Last)
		}
		return nil
	})
	// From now on every run fails there: what offsite holds stays.
	kept := manifests(small)
	failed := member(sidecarStatus(t, p.name), "offsite").Runs["failed"]
	eventually(t, time.Minute, "two more failed runs on offsite", func() error {
		if n := member(sidecarStatus(t, p.name), "offsite").Runs["failed"]; n < failed+2 {
			return fmt.Errorf("%d failed runs, want %d", n, failed+2)
		}
		return nil
	})
	if got := manifests(small); len(kept) != 1 || strings.Join(got, ",") != strings.Join(kept, ",") {
		t.Errorf("offsite's backups changed: %q, want %q", got, kept)
	}
	// A run under way may be writing its temporary file there right now (it fails and removes
	// it); what a failed run leaves behind would stay.
	eventually(t, 30*time.Second, "offsite holds only its one backup", func() error {
		if files := filesUnder(t, small); len(files) != 3 {
			return fmt.Errorf("offsite holds %q: want its one backup, chunk list and manifest, nothing half-written", files)
		}
		return nil
	})
	body := httpGet(t, metricsURL)
	mustContain(t, body, series("default")+" 1", series("offsite")+" 0")
	mustContain(t, containerLogs(t, sidecar), "stored on some of the job's targets only")
}
