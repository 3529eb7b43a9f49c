package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

// TestSidecarCatalogBackupRebuildAndNonRoot runs the sidecar as a non-root user (the group of
// the Docker socket), backs its catalog up to the target, then loses the catalog: a new
// sidecar with the same signing key (a Docker secret, kept apart from the state volume as the
// docs say) rebuilds it from the target's manifests — from those its key signed only.
func TestSidecarCatalogBackupRebuildAndNonRoot(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=0 3 * * *")
	docker(t, "exec", app, "sh", "-c", "echo one > /data/f")
	secrets := t.TempDir()
	os.Chmod(secrets, 0o755) // read by the sidecar's user
	if err := os.WriteFile(filepath.Join(secrets, "backup_key"), []byte("the sidecar's signing key, kept apart from its state\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyArgs := []string{"--user", "65532:" + socketGroup(t), "-v", secrets + ":/run/secrets:ro", "-e", "DOCKER_BACKUP_SIGNING_KEY_FILE=/run/secrets/backup_key"}
	sidecar, backups := startSidecar(t, p, keyArgs...)
	if u := strings.TrimSpace(docker(t, "exec", sidecar, "/sidecar", "version")); u == "" {
		t.Fatal("no version")
	}
	for i := 0; i < 3; i++ {
		backup(t, "run", "app", "--project", p.name)
	}
	out, stderr, err := dockerCmd(nil, "exec", sidecar, "/sidecar", "ctl", "POST", control.PathCatalog)
	if err != nil {
		t.Fatalf("catalog backup: %v %s %s", err, out, stderr)
	}
	copies, _ := filepath.Glob(filepath.Join(volumeDir(t, backups), "_catalog", p.name, "catalog-*.db"))
	if len(copies) != 1 {
		t.Fatalf("catalog copies: %q", copies)
	}
	if head, _ := os.ReadFile(copies[0]); !strings.HasPrefix(string(head), "SQLite format 3\x00") {
		t.Errorf("the catalog copy is not an SQLite database")
	}

	// An unsigned manifest of the job, written by someone who can write to the target, is not
	// a run of it once the catalog is rebuilt.
	craft(t, volumeDir(t, backups), crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", job: "default",
		raw: tarOf(t, tarEntry{name: "data/f", content: "forged\n"}), source: map[string]string{"paths": "/data"}})

	// The catalog is lost (its volume replaced); a new sidecar rebuilds it from the manifests.
	docker(t, "rm", "-f", sidecar)
	docker(t, "volume", "rm", p.name+"_backup-state")
	sidecar, _ = startSidecar(t, p, keyArgs...)
	js := jobStatus(sidecarStatus(t, p.name), "app", "default")
	if js == nil || js.Runs["success"] != 3 || js.LastSuccess == nil || js.LastSuccess.Size == 0 {
		t.Fatalf("rebuilt job: %+v", js)
	}
	mustContain(t, containerLogs(t, sidecar), "catalog rebuilt from the targets' manifests")
	// And it works on: a run as the non-root user succeeds.
	backup(t, "run", "app", "--project", p.name)
	eventually(t, 10*time.Second, "fourth run recorded", func() error {
		if n := jobStatus(sidecarStatus(t, p.name), "app", "default").Runs["success"]; n < 4 {
			return fmt.Errorf("%d successful runs", n)
		}
		return nil
	})
	// "latest" through the sidecar restores the newest backup.
	docker(t, "exec", app, "sh", "-c", "echo two > /data/f; echo extra > /data/g")
	backup(t, "run", "app", "--project", p.name)
	docker(t, "exec", app, "sh", "-c", "echo damaged > /data/f; rm /data/g")
	backup(t, "restore", "latest", "--to", "app", "--project", p.name, "--yes")
	if got := docker(t, "exec", app, "cat", "/data/f", "/data/g"); got != "two\nextra\n" {
		t.Errorf("after restoring latest: %q", got)
	}
	if u := strings.TrimSpace(docker(t, "inspect", "-f", "{{.Config.User}}", sidecar)); !strings.HasPrefix(u, "65532:") {
		t.Errorf("the sidecar runs as %q", u)
	}
}

// socketGroup is the group owning the Docker socket, for a non-root sidecar.
func socketGroup(t *testing.T) string {
	t.Helper()
	info, err := os.Stat("/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(info.Sys().(*syscall.Stat_t).Gid)
}

// TestSidecarScopeAllProjects: with DOCKER_BACKUP_SCOPE=all one sidecar schedules the enabled
// services of every project on the host, and leaves services without the label alone.
//
// Not parallel: a sidecar for every project would also run the jobs of the other tests'
// projects. Go runs the non-parallel tests before resuming the parallel ones.
func TestSidecarScopeAllProjects(t *testing.T) {
	home, other := newProject(t), newProject(t)
	other.volumeService("app", "docker-backup.schedule=@every 2s", "docker-backup.retention=1")
	other.service("ignored", plainImage, idle...)
	startSidecar(t, home, "-e", "DOCKER_BACKUP_SCOPE=all")
	eventually(t, time.Minute, "the other project's job runs", func() error {
		st := sidecarStatus(t, home.name)
		if st.Scope() != "all projects" {
			return fmt.Errorf("scope %q", st.Scope())
		}
		for _, j := range st.Jobs {
			if j.Project == other.name && j.Service == "app" && j.Runs["success"] >= 2 {
				return nil
			}
			if j.Service == "ignored" {
				t.Errorf("a service without docker-backup.enable was scheduled: %+v", j)
			}
		}
		return fmt.Errorf("jobs %+v", st.Jobs)
	})
	mustContain(t, backup(t, "status", "--project", home.name), other.name+"/app/default")
}
