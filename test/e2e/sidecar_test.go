package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// composeCmd runs docker compose (v2) or docker-compose (v1) on compose.example.yml.
func composeCmd(t *testing.T, project string, env []string, args ...string) string {
	t.Helper()
	return composeFiles(t, project, []string{"compose.example.yml"}, env, args...)
}

// composeFiles runs docker compose on the repository's compose files.
func composeFiles(t *testing.T, project string, files []string, env []string, args ...string) string {
	t.Helper()
	bin, pre := "docker-compose", []string{}
	if exec.Command("docker", "compose", "version").Run() == nil {
		bin, pre = "docker", []string{"compose"}
	}
	pre = append(pre, "-p", project)
	for _, f := range files {
		pre = append(pre, "-f", filepath.Join(fixtureRoot, f))
	}
	cmd := exec.Command(bin, append(pre, args...)...)
	// The example's sidecar runs as a user of its own: it gets the socket's group.
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+dockerConfig, "DOCKER_GID="+socketGroup(t)), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// composeDown removes a compose project: the sidecar first, so that no backup starts a
// container again while compose takes the project down.
func composeDown(t *testing.T, project string, files []string, env []string) {
	for _, id := range strings.Fields(docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project,
		"--filter", "label=com.docker.compose.service=backup")) {
		_, _, _ = dockerCmd(nil, "rm", "-f", id)
	}
	removeScratch(project)
	composeFiles(t, project, files, env, "down", "-v")
}

// TestSidecarExampleProject brings up compose.example.yml with short schedules: scheduled
// runs land in the catalog and on the target, retention prunes to the configured counts,
// a label edit is picked up without restarting the sidecar, and a backup made through the
// sidecar restores the data.
func TestSidecarExampleProject(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	env := []string{"POSTGRES_IMAGE=" + postgresImage, "FILES_IMAGE=" + plainImage, "SIDECAR_IMAGE=" + sidecarImage(t),
		"DB_SCHEDULE=@every 3s", "FILES_SCHEDULE=@every 4s"}
	t.Cleanup(func() { composeDown(t, p.name, []string{"compose.example.yml"}, env) })
	composeCmd(t, p.name, env, "up", "-d")
	sidecar := p.name + "_backup_1"
	if strings.TrimSpace(docker(t, "ps", "-q", "-f", "name="+sidecar)) == "" {
		sidecar = p.name + "-backup-1" // compose v2 naming
	}
	waitSidecar(t, sidecar)

	// Scheduled runs: the catalog counts them, the target holds only what retention keeps.
	db := waitRuns(t, p.name, "db", "default", 5, 3*time.Minute)
	files := waitRuns(t, p.name, "files", "default", 3, 2*time.Minute)
	if db.Retention != "3" || files.Retention != "keep-last=2,keep-daily=7" || !files.Stop {
		t.Errorf("jobs as configured: db %+v, files %+v", db, files)
	}
	eventually(t, 30*time.Second, "retention prunes to the configured counts", func() error {
		dbs, fs := sidecarBackups(t, p.name, "db"), sidecarBackups(t, p.name, "files")
		if len(dbs) != 3 || len(fs) != 2 {
			return fmt.Errorf("%d db backups (want 3), %d files backups (want 2)", len(dbs), len(fs))
		}
		return nil
	})
	if logs := containerLogs(t, sidecar); !strings.Contains(logs, "pruned backup") {
		t.Errorf("the sidecar's log does not say what retention removed")
	}

	// A label edit: compose recreates db with a daily schedule; the sidecar follows within
	// seconds, without a restart.
	startedAt := docker(t, "inspect", "-f", "{{.State.StartedAt}}", sidecar)
	env2 := append(env[:len(env):len(env)], "DB_SCHEDULE=0 3 * * *")
	composeCmd(t, p.name, env2, "up", "-d", "db")
	eventually(t, 20*time.Second, "the new schedule is picked up", func() error {
		js := jobStatus(sidecarStatus(t, p.name), "db", "default")
		if js == nil || js.Schedule != "0 3 * * *" || js.ScheduleText != "daily at 03:00" {
			return fmt.Errorf("db job: %+v", js)
		}
		if js.Next.Hour() != 3 && js.Next.UTC().Hour() != 3 {
			return fmt.Errorf("next run %s is not at 03:00", js.Next)
		}
		return nil
	})
	if again := docker(t, "inspect", "-f", "{{.State.StartedAt}}", sidecar); again != startedAt {
		t.Errorf("the sidecar was restarted (%s, then %s)", startedAt, again)
	}
	table := backup(t, "status", "--project", p.name)
	mustContain(t, table, "db/default", "daily at 03:00", "files/default", "every 4s", " ago", "keep-last=2,keep-daily=7")

	// The image's HEALTHCHECK (the binary asking its own /readyz) reports healthy.
	eventually(t, 90*time.Second, "the sidecar's health check", func() error {
		if h := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Health.Status}}", sidecar)); h != "healthy" {
			return fmt.Errorf("health %s", h)
		}
		return nil
	})

	// A backup made through the sidecar restores the data through the sidecar.
	pg := &pgServer{t: t, container: p.name + "_db_1", user: "shop", password: "change-me", db: "shop"}
	if strings.TrimSpace(docker(t, "ps", "-q", "-f", "name="+pg.container)) == "" {
		pg.container = p.name + "-db-1"
	}
	pg.waitReady()
	fillPostgres(pg, 1)
	want := pg.checksums()
	out := backup(t, "run", "db", "--project", p.name)
	key := regexp.MustCompile(`backup\s+(\S+)`).FindStringSubmatch(out)
	if key == nil {
		t.Fatalf("run output names no backup:\n%s", out)
	}
	pg.sql("DELETE FROM pgbench_accounts WHERE aid % 3 = 0; DROP TABLE odd CASCADE")
	backup(t, "restore", key[1], "--to", "db", "--project", p.name, "--yes")
	if got := pg.checksums(); !equalMaps(got, want) {
		t.Errorf("restored database differs:\n got %v\nwant %v", got, want)
	}

	// Stopped gracefully, the sidecar leaves the target consistent: every artifact has its
	// manifest, retention's counts hold, and no temporary file is left.
	docker(t, "stop", "-t", "60", sidecar)
	dir := volumeDir(t, p.name+"_backups")
	var artifacts, manifests int
	for _, f := range filesUnder(t, dir) {
		switch {
		case strings.HasSuffix(f, artifact.ManifestSuffix):
			manifests++
		case strings.HasSuffix(f, artifact.ChunksSuffix):
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(f, artifact.ChunksSuffix)+artifact.ManifestSuffix)); err != nil {
				t.Errorf("chunk list without its backup left on the target: %s", f)
			}
		case strings.Contains(filepath.Base(f), ".tmp-"):
			t.Errorf("temporary file left on the target: %s", f)
		default:
			artifacts++
		}
	}
	if artifacts != manifests || artifacts != 5 {
		t.Errorf("target holds %d artifacts and %d manifests, want 5 of each (3 db, 2 files): %q", artifacts, manifests, filesUnder(t, dir))
	}
}
