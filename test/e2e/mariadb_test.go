package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var mariadbImage = fixtureImage("DOCKER_BACKUP_TEST_MARIADB_IMAGE", "mariadb")

type mariaServer struct {
	t         *testing.T
	container string
	password  string
}

func startMariaDB(t *testing.T, p *project, env ...string) *mariaServer {
	t.Helper()
	s := &mariaServer{t: t, password: "r00t 'p@ss\" $word"}
	args := []string{"-e", "MARIADB_ROOT_PASSWORD=" + s.password, "-v", p.volume("dbdata") + ":/var/lib/mysql"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	s.container = p.service("db", mariadbImage(t), args...)
	eventually(t, 2*time.Minute, "mariadb ready", func() error {
		_, err := s.query("SELECT 1")
		return err
	})
	return s
}

func (s *mariaServer) query(sql string) (string, error) {
	out, stderr, err := dockerCmd(nil, "exec", "-e", "MYSQL_PWD="+s.password, s.container,
		"mariadb", "-uroot", "--default-character-set=utf8mb4", "--batch", "--skip-column-names", "-e", sql)
	if err != nil {
		return "", &cmdError{err, stderr}
	}
	return strings.TrimSpace(out), nil
}

func (s *mariaServer) sql(sql string) string {
	s.t.Helper()
	out, err := s.query(sql)
	if err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// state is everything the restore must bring back: table checksums and row counts, and the
// definitions of views, triggers, procedures and events.
func (s *mariaServer) state() string {
	s.t.Helper()
	var b strings.Builder
	for _, db := range []string{"shop", "analytics"} {
		for _, tbl := range strings.Fields(s.sql("SELECT table_name FROM information_schema.tables WHERE table_schema='" + db + "' AND table_type='BASE TABLE' ORDER BY 1")) {
			b.WriteString(s.sql("CHECKSUM TABLE `"+db+"`.`"+tbl+"` EXTENDED") + " rows=" + s.sql("SELECT count(*) FROM `"+db+"`.`"+tbl+"`") + "\n")
		}
		b.WriteString(s.sql("SELECT table_name, view_definition FROM information_schema.views WHERE table_schema='"+db+"' ORDER BY 1") + "\n")
		b.WriteString(s.sql("SELECT trigger_name, action_statement FROM information_schema.triggers WHERE trigger_schema='"+db+"' ORDER BY 1") + "\n")
		b.WriteString(s.sql("SELECT routine_name, routine_definition FROM information_schema.routines WHERE routine_schema='"+db+"' ORDER BY 1") + "\n")
		b.WriteString(s.sql("SELECT event_name, event_definition FROM information_schema.events WHERE event_schema='"+db+"' ORDER BY 1") + "\n")
	}
	return b.String()
}

const mariaFill = `
CREATE DATABASE shop; CREATE DATABASE analytics;
CREATE TABLE shop.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) CHARACTER SET utf8mb4, data BLOB, price DECIMAL(10,2), note TEXT NULL);
INSERT INTO shop.items (name, data, price, note) VALUES
  ('ünïcødé ✓ 日本語 🚀', UNHEX('00FF10AB'), 9.99, NULL),
  ('quote '' and \\ backslash', NULL, NULL, 'tab	newline
end'),
  ('binary zeros', UNHEX(REPEAT('00', 1000)), 0, '');
USE shop; INSERT INTO shop.items (name, price) SELECT CONCAT('bulk ', seq), seq / 3 FROM seq_1_to_5000;
CREATE TABLE shop.audit (id INT AUTO_INCREMENT PRIMARY KEY, item INT, at DATETIME);
CREATE TRIGGER shop.items_ai AFTER INSERT ON shop.items FOR EACH ROW INSERT INTO shop.audit (item, at) VALUES (NEW.id, '2024-01-01');
CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items WHERE price < 1;
CREATE PROCEDURE shop.bump(IN amount INT) UPDATE shop.items SET price = price + amount;
CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM shop.audit WHERE at < '2000-01-01';
CREATE TABLE analytics.hits (day DATE PRIMARY KEY, n BIGINT);
INSERT INTO analytics.hits VALUES ('2024-02-29', 12), ('2024-03-01', 0);
`

func TestMariaDBRoundTrip(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startMariaDB(t, p)
	db.sql(mariaFill)
	before := db.state()
	if !strings.Contains(before, "items_ai") || !strings.Contains(before, "bump") || !strings.Contains(before, "nightly") {
		t.Fatalf("fixture lacks objects:\n%s", before)
	}

	dir := t.TempDir()
	out := backup(t, "run", "db", "--project", p.name, "--to", dir)
	mustContain(t, out, "mysql")
	m := onlyBackup(t, dir)
	if m.Strategy != "mysql" || m.Source["databases"] != "analytics,shop" || m.Source["dump_tool"] != "mariadb-dump" || m.Source["server_version"] == "" {
		t.Errorf("manifest: %+v", m.Source)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, m.Artifact+".manifest.json"))
	if strings.Contains(string(raw), "p@ss") {
		t.Error("the manifest contains the password")
	}

	db.sql(`UPDATE shop.items SET price = 1000 WHERE id < 100; DELETE FROM shop.items WHERE id > 4000;
		DROP VIEW shop.cheap; DROP PROCEDURE shop.bump; DROP TABLE analytics.hits; CREATE TABLE shop.later (x INT);
		DROP TRIGGER shop.items_ai; INSERT INTO shop.items (name) VALUES ('after the backup')`)
	if db.state() == before {
		t.Fatal("the changes changed nothing")
	}
	backup(t, "restore", "latest", "--from", dir, "--to", "db", "--project", p.name, "--yes")
	if after := db.state(); after != before {
		t.Errorf("state after restore differs:\n%s", diffLines(before, after))
	}
	if tables := db.sql("SHOW TABLES FROM shop"); strings.Contains(tables, "later") {
		t.Error("a table created after the backup survived the restore of its database")
	}
}

func TestMariaDBPasswordNeverOnACommandLine(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startMariaDB(t, p)
	db.sql("CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, pad CHAR(200)); USE big; INSERT INTO big.t SELECT seq, REPEAT('x', 200) FROM seq_1_to_300000")
	dir := t.TempDir()
	// While the dump runs, look at every process's command line inside the container.
	done := make(chan string)
	go func() {
		var seen strings.Builder
		for i := 0; i < 200; i++ {
			out, _, _ := dockerCmd(nil, "exec", db.container, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
			seen.WriteString(out)
			if strings.Contains(out, "mariadb-dump") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		done <- seen.String()
	}()
	backup(t, "run", "db", "--project", p.name, "--to", dir)
	seen := <-done
	if !strings.Contains(seen, "mariadb-dump") {
		t.Fatalf("never saw the dump running; process lists:\n%s", seen)
	}
	if strings.Contains(seen, "p@ss") {
		t.Errorf("the password appeared on a command line:\n%s", seen)
	}
}

func TestMariaDBFailures(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startMariaDB(t, p)
	db.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1)")
	dir := t.TempDir()

	stderr := backupFails(t, nil, "run", "db", "--project", p.name, "--to", dir, "--database", "shop,nosuchdb")
	mustContain(t, stderr, "dump of "+p.name+"/db", "mariadb-dump exited with code 2", "nosuchdb", "nothing was stored")
	stderr = backupFails(t, []string{"DOCKER_BACKUP_PASSWORD=wrong"}, "run", "db", "--project", p.name, "--to", dir, "--user", "root")
	mustContain(t, stderr, "Access denied")
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("failed backups left files: %v", files)
	}

	// An SQL error stops the restore with the client's message.
	key := writeArtifact(t, dir, p.name, "db", "mysql", "sql", []byte("INSERT INTO shop.t VALUES (2);\nINSERT INTO shop.nosuch VALUES (1);\nINSERT INTO shop.t VALUES (3);\n"))
	stderr = backupFails(t, nil, "restore", key, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	mustContain(t, stderr, "restore of "+p.name+"/db", "exited with code 1", "nosuch")
	if got := db.sql("SELECT group_concat(id ORDER BY id) FROM shop.t"); got != "1,2" {
		t.Errorf("rows after the failed restore: %s (the statements before the error ran, the ones after must not)", got)
	}
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.stderr }
