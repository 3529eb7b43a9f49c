package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// subject is a service of one strategy with enough data (several MiB) for a fault point in
// the middle of its stream, a digest of its data, and a way to change it.
type subject struct {
	strategy  string
	service   string
	container string
	args      []string // extra flags of `run`
	state     func() string
	ready     func() error // nil: running is ready
	change    func()
	// atomic: an interrupted restore leaves the data as it was.
	atomic bool
}

// subjects lists the strategies that can run here (MongoDB cannot).
var subjects = []string{"postgres", "mysql", "redis", "sqlite", "volume"}

func newSubject(t *testing.T, p *project, strategy string) *subject {
	t.Helper()
	switch strategy {
	case "postgres":
		db := startPostgres(t, p, "db")
		docker(t, "exec", db.container, "pgbench", "-i", "-q", "-s", "1", "-U", db.user, db.db)
		// A large object: pg_dump writes BEGIN; and COMMIT; of its own around it.
		db.sql(`SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 65536), 'hex'))`)
		state := func() string {
			lo := db.sql(`SELECT count(*) || ':' || coalesce(md5(string_agg(data::text, '' ORDER BY loid, pageno)), '-') FROM pg_largeobject`)
			return fmt.Sprint(db.checksums()) + " lo=" + lo
		}
		ready := func() error {
			_, stderr, err := dockerCmd(nil, "exec", db.container, "pg_isready", "-h", "127.0.0.1", "-U", db.user, "-d", db.db)
			if err != nil {
				return fmt.Errorf("%v %s", err, stderr)
			}
			return nil
		}
		return &subject{strategy: strategy, service: "db", container: db.container, state: state, ready: ready, atomic: true, change: func() {
			db.sql(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 2 = 0`)
			db.sql(`DROP TABLE pgbench_branches`) // (a table made after the backup would stay: pg_dump drops what it restores)
			db.sql(`SELECT lo_unlink(loid) FROM (SELECT DISTINCT loid FROM pg_largeobject) l`)
		}}
	case "mysql":
		db := startMariaDB(t, p)
		db.sql(mariaFill)
		db.sql(`USE shop; CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200)); INSERT INTO big SELECT seq, REPEAT(MD5(seq), 6) FROM seq_1_to_20000`)
		ready := func() error { _, err := db.query("SELECT 1"); return err }
		return &subject{strategy: strategy, service: "db", container: db.container, state: db.state, ready: ready, change: func() {
			db.sql(`DELETE FROM shop.items WHERE id % 2 = 0; DROP VIEW shop.cheap`)
		}}
	case "redis":
		r := startRedis(t, p, "", false)
		r.fill()
		r.do("DEBUG", "POPULATE", "120000", "pad", "24")
		ready := func() error {
			if out := r.try("PING"); out != "PONG" {
				return fmt.Errorf("PING: %s", out)
			}
			if out := r.try("INFO", "persistence"); !strings.Contains(out, "loading:0") {
				return fmt.Errorf("loading")
			}
			return nil
		}
		return &subject{strategy: strategy, service: "cache", container: r.container, state: r.state, ready: ready, atomic: true, change: func() {
			r.do("FLUSHALL")
			r.do("SET", "after", "the backup")
		}}
	case "sqlite":
		app := p.service("app", sqliteImage(t), append([]string{"-v", p.volume("appdata") + ":/data"}, idle...)...)
		docker(t, "exec", app, "sqlite3", "/data/app.db", sqliteSchema+`
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
INSERT INTO notes (body, n) SELECT hex(randomblob(40)), i FROM c;`)
		state := func() string {
			sum := sha256.Sum256([]byte(docker(t, "exec", app, "sqlite3", "/data/app.db", ".dump")))
			return hex.EncodeToString(sum[:])
		}
		return &subject{strategy: strategy, service: "app", container: app, args: []string{"--strategy", "sqlite", "--database", "/data/app.db"},
			state: state, atomic: true, change: func() {
				docker(t, "exec", app, "sqlite3", "/data/app.db", "DELETE FROM notes WHERE id % 3 = 0; CREATE TABLE after (x)")
			}}
	case "volume":
		f := newVolumeFixtureIn(t, p)
		f.sh("head -c 4000000 /dev/urandom > /data/dir/more.bin")
		// A restore through the worker is staged: cut before its files are moved into place,
		// it leaves the volumes as they were — once its worker removed what it staged (the
		// worker does when its connection ends).
		return &subject{strategy: strategy, service: "files", container: f.app, args: []string{"--stop"}, state: f.tree,
			change: func() { f.sh(changeScript) }, atomic: true,
			ready: func() error { return workersGone(t, p.name+"/files") }}
	}
	t.Fatalf("no subject %q", strategy)
	return nil
}

// waitState waits until the subject's server runs and answers, and returns its digest.
func (s *subject) waitState(t *testing.T) string {
	t.Helper()
	waitRunning(t, s.container)
	if s.ready != nil {
		eventually(t, 2*time.Minute, s.service+" answering", s.ready)
	}
	return s.state()
}

// workersGone says whether no worker container of the service ("project/service") runs.
func workersGone(t *testing.T, service string) error {
	t.Helper()
	if out := docker(t, "ps", "-q", "--filter", "label=org.docker-backup.worker", "--filter", "label=org.docker-backup.scratch.service="+service); out != "" {
		return fmt.Errorf("worker containers still running: %s", out)
	}
	return nil
}
