package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pgServer is a running PostgreSQL container of a test project.
type pgServer struct {
	t                  *testing.T
	container          string
	user, password, db string
}

func startPostgres(t *testing.T, p *project, service string) *pgServer {
	t.Helper()
	s := &pgServer{t: t, user: "app", password: "pw-" + p.name, db: "appdb"}
	vol := p.volume(service + "data")
	s.container = p.service(service, postgresImage,
		"-e", "POSTGRES_USER="+s.user, "-e", "POSTGRES_PASSWORD="+s.password, "-e", "POSTGRES_DB="+s.db,
		"-v", vol+":/var/lib/postgresql/data")
	s.waitReady()
	return s
}

// waitReady waits for the real server: the official image's init server has no TCP listener.
func (s *pgServer) waitReady() {
	eventually(s.t, 90*time.Second, "postgres ready", func() error {
		_, stderr, err := dockerCmd(nil, "exec", s.container, "pg_isready", "-h", "127.0.0.1", "-U", s.user, "-d", s.db)
		if err != nil {
			return fmt.Errorf("%v %s", err, stderr)
		}
		return nil
	})
}

func (s *pgServer) sql(query string) string {
	s.t.Helper()
	return strings.TrimSpace(docker(s.t, "exec", s.container, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-A", "-t", "-U", s.user, "-d", s.db, "-c", query))
}

// checksums returns, per table in schema public, its row count and an md5 of all its rows
// in a stable order.
func (s *pgServer) checksums() map[string]string {
	s.t.Helper()
	tables := strings.Fields(s.sql(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`))
	out := map[string]string{}
	for _, tbl := range tables {
		out[tbl] = s.sql(fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\n' ORDER BY x::text)), '-') FROM %q x`, tbl))
	}
	return out
}

// fillPostgres loads pgbench data plus a table with NULLs, unicode, bytea and a sequence.
func fillPostgres(s *pgServer, scale int) {
	s.t.Helper()
	docker(s.t, "exec", s.container, "pgbench", "-i", "-q", "-s", fmt.Sprint(scale), "-U", s.user, s.db)
	s.sql(`CREATE TABLE odd (
		id serial PRIMARY KEY, name text, blob bytea, price numeric(12,2), at timestamptz, tags text[], doc jsonb)`)
	s.sql(`INSERT INTO odd (name, blob, price, at, tags, doc) VALUES
		('plain', NULL, 1.50, '2024-02-29 12:00:00+00', '{a,b}', '{"k": [1, 2]}'),
		(NULL, '\x00ff10'::bytea, NULL, NULL, NULL, NULL),
		('ünïcødé ✓ 日本語 🚀', decode(repeat('deadbeef', 1000), 'hex'), -42.00, now(), '{"with space","quo\"te"}', '{"emoji": "🚀"}'),
		('tab	and
newline', ''::bytea, 0, 'infinity', '{}', 'null')`)
	s.sql(`CREATE VIEW odd_names AS SELECT id, name FROM odd WHERE name IS NOT NULL`)
}

func TestPostgresRoundTrip(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	fillPostgres(db, 5)
	before := db.checksums()
	if len(before) < 5 {
		t.Fatalf("expected at least 5 tables, have %v", before)
	}

	dir := t.TempDir()
	out := backup(t, "run", "db", "--project", p.name, "--to", dir)
	mustContain(t, out, "postgres", "sha256")
	m := onlyBackup(t, dir)
	if m.Strategy != "postgres" || m.Project != p.name || m.Service != "db" || m.Source["database"] != db.db || m.Source["user"] != db.user {
		t.Errorf("manifest does not describe the backup: %+v", m)
	}
	if m.Source["pg_dump_version"] == "" || m.Source["server_version"] == "" || m.Image != postgresImage {
		t.Errorf("manifest lacks versions or image: %+v", m)
	}
	if m.RawSize <= m.Size || m.Compression != "zstd" {
		t.Errorf("expected a compressed zstd artifact, got size %d raw %d compression %s", m.Size, m.RawSize, m.Compression)
	}
	for _, f := range filesUnder(t, dir) {
		info, _ := os.Stat(filepath.Join(dir, f))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
		}
	}
	// The secret never reaches the artifact's manifest.
	raw, _ := os.ReadFile(filepath.Join(dir, m.Artifact+".manifest.json"))
	if strings.Contains(string(raw), db.password) {
		t.Errorf("the manifest contains the database password")
	}

	// Change rows, delete rows, add rows, drop a table, add a table.
	db.sql(`UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid % 3 = 0`)
	db.sql(`DELETE FROM pgbench_accounts WHERE aid BETWEEN 1000 AND 2000`)
	db.sql(`INSERT INTO odd (name) VALUES ('added after the backup')`)
	db.sql(`DROP VIEW odd_names`)
	db.sql(`DROP TABLE pgbench_branches`)
	db.sql(`UPDATE odd SET blob = NULL, name = 'changed'`)
	if after := db.checksums(); equalMaps(after, before) {
		t.Fatal("the modifications did not change the data; the test would prove nothing")
	}

	out = backup(t, "restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	mustContain(t, out, "Restored", "verified")
	after := db.checksums()
	for tbl, sum := range before {
		if after[tbl] != sum {
			t.Errorf("table %s after restore: %s, want %s", tbl, after[tbl], sum)
		}
	}
	if got := db.sql(`SELECT count(*) FROM odd_names`); got != "3" {
		t.Errorf("view odd_names after restore has %s rows, want 3", got)
	}
	// The sequence continues after the restored ids.
	if got := db.sql(`INSERT INTO odd (name) VALUES ('next') RETURNING id`); got != "5" {
		t.Errorf("next id after restore is %s, want 5", got)
	}
}

func TestPostgresRestoreStopsAtSQLError(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	db.sql(`CREATE TABLE keep (id int PRIMARY KEY, v text); INSERT INTO keep VALUES (1, 'original')`)
	before := db.checksums()

	// A checksummed, well-formed artifact whose SQL fails halfway: the first statements must
	// not survive the error.
	dir := t.TempDir()
	writeArtifact(t, dir, p.name, "db", "postgres", "sql", []byte(
		"DROP TABLE keep;\nCREATE TABLE keep (id int);\nINSERT INTO keep VALUES (99);\nSELECT * FROM no_such_table;\nCREATE TABLE never (x int);\n"))
	m := onlyBackup(t, dir)
	stderr := backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	mustContain(t, stderr, "restore", "psql exited with code 3", "no_such_table", p.name+"/db")
	if after := db.checksums(); !equalMaps(after, before) {
		t.Errorf("a failed restore changed the database: %v, want %v", after, before)
	}
}

func TestPostgresDumpFailureStoresNothing(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	startPostgres(t, p, "db")
	dir := t.TempDir()
	backup(t, "run", "db", "--project", p.name, "--to", dir)
	first := listBackups(t, dir)

	stderr := backupFails(t, nil, "run", "db", "--project", p.name, "--to", dir, "--database", "no_such_db")
	mustContain(t, stderr, "dump of "+p.name+"/db", "pg_dump exited with code 1", "no_such_db", "nothing was stored")
	if files, now := filesUnder(t, dir), listBackups(t, dir); len(now) != 1 || now[0].Artifact != first[0].Artifact || len(files) != 3 {
		t.Errorf("a failed backup changed the target: backups %v, files %s", now, fmtList(files))
	}

	// A stopped server is a clear error too, and nothing is stored.
	docker(t, "stop", p.name+"-db-1")
	stderr = backupFails(t, nil, "run", "db", "--project", p.name, "--to", dir)
	mustContain(t, stderr, "not running")
	if files := filesUnder(t, dir); len(files) != 3 {
		t.Errorf("files after failed backups: %s", fmtList(files))
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
