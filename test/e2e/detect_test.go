package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDetectEveryKind(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	// Images whose names say nothing, so that only a probe can tell what they run.
	anonymousDB := "docker-backup-e2e/warehouse:" + p.name
	lookAlike := "docker-backup-e2e/pgadmin4:" + p.name
	docker(t, "tag", mariadbImage(t), anonymousDB)
	docker(t, "tag", plainImage, lookAlike)
	t.Cleanup(func() { dockerCmd(nil, "rmi", anonymousDB, lookAlike) })

	pg := startPostgres(t, p, "db")
	_ = pg
	p.service("warehouse", anonymousDB, "-e", "MARIADB_ROOT_PASSWORD=pw", "-v", p.volume("wh")+":/var/lib/mysql")
	startRedisService(t, p)
	app := p.service("app", sqliteImage(t), "-v", p.volume("appdata")+":/data")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/db && sqlite3 /data/db/main.sqlite3 'CREATE TABLE t(x)' && echo not-a-db > /data/notes.db")
	p.service("files", pauseImage, "-v", p.volume("files")+":/srv")
	p.service("admin", lookAlike, "-e", "PGADMIN_DEFAULT_EMAIL=a@b.c", "-e", "POSTGRES_PASSWORD=x", "-v", p.volume("admin")+":/var/lib/pgadmin")
	p.service("web", plainImage)
	shelllessServer(t, p, "kv", "redis-server", "redis-cli")
	eventually(t, 2*time.Minute, "warehouse answers", func() error {
		_, _, err := dockerCmd(nil, "exec", "-e", "MYSQL_PWD=pw", p.name+"-warehouse-1", "mariadb", "-uroot", "-e", "SELECT 1")
		return err
	})

	var got []struct {
		Service    string
		Strategies []struct{ Strategy, Reason string }
	}
	if err := json.Unmarshal([]byte(backup(t, "detect", "--project", p.name, "--format", "json")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"db":        "postgres,volume",
		"warehouse": "mysql,volume",
		"cache":     "redis,volume",
		"app":       "volume,sqlite",
		"files":     "volume",
		"admin":     "volume",
		"web":       "",
		"kv":        "redis",
	}
	reasons := map[string]string{"db": "image", "warehouse": "probe: mariadbd and mariadb-dump", "cache": "image",
		"app": "/data/db/main.sqlite3", "kv": "probe: redis-server and redis-cli"}
	for _, s := range got {
		var names, why []string
		for _, c := range s.Strategies {
			names = append(names, c.Strategy)
			why = append(why, c.Reason)
		}
		if g := strings.Join(names, ","); g != want[s.Service] {
			t.Errorf("%s: strategies %q, want %q (reasons %q)", s.Service, g, want[s.Service], why)
		}
		if r := reasons[s.Service]; r != "" && !strings.Contains(strings.Join(why, "; "), r) {
			t.Errorf("%s: reasons %q do not mention %q", s.Service, why, r)
		}
		if s.Service == "app" && strings.Contains(strings.Join(why, ";"), "notes.db") {
			t.Errorf("app: a file that is not SQLite was proposed: %q", why)
		}
		delete(want, s.Service)
	}
	if len(want) > 0 {
		t.Errorf("services missing from detect: %v", want)
	}
	// The table output says the same, with the labels to add.
	mustContain(t, backup(t, "detect", "--project", p.name), "docker-backup.strategy: \"mysql\"", "probe: mariadbd")
}

// shelllessServer starts service from the pause image (no shell, nothing else) with programs
// named bins in /usr/local/bin that print a version and exit 0: the probe must run each one
// itself, since there is no shell to ask.
func shelllessServer(t *testing.T, p *project, service string, bins ...string) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"7.0.0\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "root", "usr", "local", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, bins[0]), src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a stand-in for %s: %v\n%s", bins[0], err, out)
	}
	for _, b := range bins[1:] {
		if err := os.Link(filepath.Join(bin, bins[0]), filepath.Join(bin, b)); err != nil {
			t.Fatal(err)
		}
	}
	name := p.name + "-" + service + "-1"
	docker(t, "create", "--name", name,
		"--label", "com.docker.compose.project="+p.name,
		"--label", "com.docker.compose.service="+service,
		"--label", "com.docker.compose.container-number=1", pauseImage)
	docker(t, "cp", filepath.Join(dir, "root", "usr"), name+":/")
	docker(t, "start", name)
}

func startRedisService(t *testing.T, p *project) {
	t.Helper()
	p.service("cache", redisImage(t), "-v", p.volume("cache")+":/data")
}
