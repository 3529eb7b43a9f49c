package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// TestSidecarS3RetentionStaysInItsPrefix: two sidecars (two projects with the same service
// name) and a plugin backup under another host's prefix share one bucket. One sidecar's
// retention prunes only its own job's backups; with MinIO down its runs fail clearly, and
// nothing is deleted or left half-uploaded.
func TestSidecarS3RetentionStaysInItsPrefix(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("shared")
	sidecarArgs := append([]string{"--network", "host", "-e", "DOCKER_BACKUP_TARGET=" + m.url("shared"), "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0"},
		envFlags(m.env())...)

	a, b := newProject(t), newProject(t)
	aDB := a.volumeService("db", "docker-backup.schedule=@every 2s", "docker-backup.retention=2")
	bDB := b.volumeService("db", "docker-backup.schedule=0 3 * * *", "docker-backup.retention=5")
	docker(t, "exec", aDB, "sh", "-c", "echo a > /data/f")
	docker(t, "exec", bDB, "sh", "-c", "echo b > /data/f")
	// A backup of project a's db by hand, under another host's prefix.
	backupWithEnv(t, m.env(), "run", "db", "--project", a.name, "--to", m.url("shared/other-host"))

	startSidecar(t, b, sidecarArgs...)
	backup(t, "run", "db", "--project", b.name)
	backup(t, "run", "db", "--project", b.name)
	before := m.objects("shared")
	aSidecar, _ := startSidecar(t, a, sidecarArgs...)
	waitRuns(t, a.name, "db", "default", 5, 2*time.Minute)

	host := strings.TrimSpace(docker(t, "info", "-f", "{{.Name}}"))
	count := func(prefix string) int {
		n := 0
		for _, k := range m.objects("shared") {
			if strings.HasPrefix(k, prefix) && !strings.HasSuffix(k, ".manifest.json") && !strings.HasSuffix(k, artifact.ChunksSuffix) {
				n++
			}
		}
		return n
	}
	eventually(t, 20*time.Second, "a's retention", func() error {
		if n := count(host + "/" + a.name + "/db/"); n != 2 {
			return fmt.Errorf("%d of a's backups, want 2", n)
		}
		return nil
	})
	for _, k := range before {
		if !contains(m.objects("shared"), k) {
			t.Errorf("a's retention deleted %s, which is not its own", k)
		}
	}
	if count("other-host/"+a.name+"/db/") != 1 || count(host+"/"+b.name+"/db/") != 2 {
		t.Errorf("objects outside a's sidecar prefix changed: %q", m.objects("shared"))
	}
	for _, k := range m.objects("shared") {
		if !strings.HasPrefix(k, host+"/") && !strings.HasPrefix(k, "other-host/") {
			t.Errorf("%s is not under the host prefix %s/", k, host)
		}
	}

	// MinIO down at the time of a run and its retention: the runs fail with a clear error
	// and nothing is deleted.
	kept := m.objects("shared")
	m.kill()
	eventually(t, 2*time.Minute, "a run fails while MinIO is down", func() error {
		js := jobStatus(sidecarStatus(t, a.name), "db", "default")
		if js.Runs["failed"] == 0 || js.Last.Status != "failed" {
			return fmt.Errorf("runs %v", js.Runs)
		}
		if !strings.Contains(js.Last.Error, m.addr) {
			return fmt.Errorf("the error does not name the endpoint: %s", js.Last.Error)
		}
		return nil
	})
	js := jobStatus(sidecarStatus(t, a.name), "db", "default")
	if strings.Contains(js.Last.Error, strings.TrimPrefix(m.env()[1], "AWS_SECRET_ACCESS_KEY=")) {
		t.Errorf("the error shows the secret key: %s", js.Last.Error)
	}
	m.start()
	leftover := m.incompleteUploads("shared")
	t.Logf("unfinished uploads right after MinIO's restart: %q", leftover)
	after := m.objects("shared")
	for _, k := range kept {
		if !contains(after, k) {
			t.Errorf("%s was deleted while MinIO was down or right after", k)
		}
	}
	// Once MinIO is back the job succeeds again, the parts of the upload MinIO's death cut
	// short are removed, and retention keeps 2.
	succeeded := js.Runs["success"]
	waitRuns(t, a.name, "db", "default", succeeded+2, time.Minute)
	eventually(t, 20*time.Second, "no unfinished uploads", func() error {
		if up := m.incompleteUploads("shared"); len(up) != 0 {
			return fmt.Errorf("unfinished uploads left: %q", up)
		}
		return nil
	})
	if len(leftover) > 0 {
		mustContain(t, containerLogs(t, aSidecar), "removed a failed run's unfinished upload")
	}
	eventually(t, 20*time.Second, "a's retention after the outage", func() error {
		if n := count(host + "/" + a.name + "/db/"); n != 2 {
			return fmt.Errorf("%d of a's backups, want 2", n)
		}
		return nil
	})
}

func envFlags(env []string) []string {
	var out []string
	for _, e := range env {
		out = append(out, "-e", e)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSidecarTwoS3TargetsWithTheirOwnKeys: a sidecar with two S3 targets on two servers with
// different keys — the default one from AWS_*, the named one from its own variables, its
// secret from a file (a Docker secret) — and a service with a job for each.
func TestSidecarTwoS3TargetsWithTheirOwnKeys(t *testing.T) {
	t.Parallel()
	onsite, offsite := startMinio(t), startMinio(t)
	onsite.bucket("onsite")
	offsite.bucket("offsite")
	secretDir := t.TempDir()
	secret := strings.TrimPrefix(offsite.env()[1], "AWS_SECRET_ACCESS_KEY=")
	if err := os.WriteFile(filepath.Join(secretDir, "offsite_secret"), []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *",
		"docker-backup.copy.schedule=0 4 * * *", "docker-backup.copy.target=offsite")
	docker(t, "exec", app, "sh", "-c", "echo data > /data/f")
	sidecar, _ := startSidecar(t, p, append(envFlags(onsite.env()), "--network", "host", "-e", "DOCKER_BACKUP_LISTEN=127.0.0.1:0",
		"-e", "DOCKER_BACKUP_TARGET="+onsite.url("onsite"),
		"-e", "DOCKER_BACKUP_TARGET_OFFSITE="+offsite.url("offsite"),
		"-e", "DOCKER_BACKUP_TARGET_OFFSITE_ACCESS_KEY_ID="+strings.TrimPrefix(offsite.env()[0], "AWS_ACCESS_KEY_ID="),
		"-e", "DOCKER_BACKUP_TARGET_OFFSITE_SECRET_ACCESS_KEY_FILE=/run/secrets/offsite_secret",
		"-v", secretDir+":/run/secrets:ro")...)
	backup(t, "run", "app/default", "--project", p.name)
	backup(t, "run", "app/copy", "--project", p.name)
	if on, off := onsite.objects("onsite"), offsite.objects("offsite"); len(on) != 3 || len(off) != 3 {
		t.Errorf("objects: onsite %q, offsite %q (want an artifact, its chunk list and its manifest on each)", on, off)
	}
	if strings.Contains(docker(t, "inspect", sidecar), secret) {
		t.Error("the offsite secret shows in docker inspect")
	}
	var targets []string
	for _, ms := range sidecarBackups(t, p.name, "app") {
		targets = append(targets, ms.Job)
	}
	if strings.Join(targets, ",") != "copy,default" && strings.Join(targets, ",") != "default,copy" {
		t.Errorf("backups by job: %q", targets)
	}
}
