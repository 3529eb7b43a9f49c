package e2e

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

var sqliteImage = fixtureImage("DOCKER_BACKUP_TEST_SQLITE_IMAGE", "sqlite")

const sqliteSchema = `PRAGMA journal_mode=WAL;
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, blob BLOB, n REAL);
CREATE INDEX notes_body ON notes(body);
INSERT INTO notes (body, blob, n) VALUES ('ünïcødé ✓', x'00ff', 1.5), (NULL, NULL, NULL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
INSERT INTO notes (body, n) SELECT 'row ' || i, i / 7.0 FROM c;`

// sqliteOf runs sqlite3 on a database file on the host, in a throwaway fixture container.
func sqliteOf(t *testing.T, file string, sql string) string {
	t.Helper()
	dir := filepath.Dir(file)
	return docker(t, "run", "--rm", "-v", dir+":/x", sqliteImage(t), "sqlite3", "/x/"+filepath.Base(file), sql)
}

// extractDB writes the database file of a sqlite artifact to a host directory.
func extractDB(t *testing.T, dir string, m artifact.Manifest, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, m.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := artifact.Zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		w, _ := os.Create(filepath.Join(out, hdr.Name))
		io.Copy(w, tr)
		w.Close()
	}
	return filepath.Join(out, name)
}

func TestSQLiteOnlineBackupWhileWriting(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.service("app", sqliteImage(t), "-v", p.volume("appdata")+":/data")
	docker(t, "exec", app, "sqlite3", "/data/app.db", sqliteSchema)
	// A writer that never stops: one transaction after another while the backup runs.
	docker(t, "exec", "-d", app, "sh", "-c",
		`i=0; while :; do sqlite3 /data/app.db "INSERT INTO notes (body, n) VALUES ('live $i', $i)"; i=$((i+1)); done`)
	time.Sleep(500 * time.Millisecond)

	detectOut := backup(t, "detect", "--project", p.name)
	mustContain(t, detectOut, "/data/app.db", "none is picked for you")
	stderr := backupFails(t, nil, "run", "app", "--project", p.name, "--strategy", "sqlite", "--to", t.TempDir())
	mustContain(t, stderr, "--database", "/data/app.db")

	dir := t.TempDir()
	backup(t, "run", "app", "--project", p.name, "--strategy", "sqlite", "--database", "/data/app.db", "--to", dir)
	m := onlyBackup(t, dir)
	if m.Source["method"] != "online .backup" || m.Source["path"] != "/data/app.db" {
		t.Errorf("manifest: %+v", m.Source)
	}
	if left := docker(t, "exec", app, "sh", "-c", "ls -a /data"); strings.Contains(left, ".docker-backup-") {
		t.Errorf("the temporary copy was left behind: %s", left)
	}
	snapshot := extractDB(t, dir, m, "app.db")
	if got := strings.TrimSpace(sqliteOf(t, snapshot, "PRAGMA integrity_check")); got != "ok" {
		t.Fatalf("integrity of the backed-up copy: %s", got)
	}
	want := sqliteOf(t, snapshot, ".dump")
	if !strings.Contains(want, "live ") {
		t.Fatal("the snapshot holds none of the concurrent writes; the test proves nothing")
	}

	time.Sleep(300 * time.Millisecond) // more writes after the backup, in the WAL
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "app", "--project", p.name, "--yes")
	if got := strings.TrimSpace(docker(t, "exec", app, "sqlite3", "/data/app.db", "PRAGMA integrity_check")); got != "ok" {
		t.Fatalf("integrity after restore: %s", got)
	}
	if got := docker(t, "exec", app, "sqlite3", "/data/app.db", ".dump"); got != want {
		t.Errorf("the restored database differs from the snapshot:\n%.2000s", diffLines(want, got))
	}
	if !running(t, app) {
		t.Error("the app was not started again")
	}
}

func TestSQLiteWithoutShellStopsTheContainer(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.volume("appdata")
	filler := p.service("filler", sqliteImage(t), "-v", vol+":/data")
	docker(t, "exec", filler, "sqlite3", "/data/app.db", sqliteSchema)
	app := p.service("app", pauseImage, "-v", vol+":/data")
	before := docker(t, "exec", filler, "sqlite3", "/data/app.db", ".dump")

	dir := t.TempDir()
	_, stderr, err := dockerCmd(nil, "backup", "run", "app", "--project", p.name, "--strategy", "sqlite", "--database", "/data/app.db", "--to", dir)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "no sqlite3 shell", "Stopping container", "Starting container again")
	m := onlyBackup(t, dir)
	if m.Source["method"] != "stopped copy" {
		t.Errorf("method %q, want stopped copy", m.Source["method"])
	}
	if !running(t, app) {
		t.Fatal("the app was not started again after the backup")
	}
	docker(t, "exec", filler, "sqlite3", "/data/app.db", "DELETE FROM notes WHERE id % 2 = 0; DROP INDEX notes_body")
	backup(t, "restore", "latest", "--from", dir, "--to", "app", "--project", p.name, "--yes")
	if got := docker(t, "exec", filler, "sqlite3", "/data/app.db", ".dump"); got != before {
		t.Errorf("restored database differs:\n%.2000s", diffLines(before, got))
	}
	if got := strings.TrimSpace(docker(t, "exec", filler, "sqlite3", "/data/app.db", "PRAGMA integrity_check")); got != "ok" {
		t.Errorf("integrity after restore: %s", got)
	}
}
