package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// in is the same server, another database.
func (s *pgServer) in(db string) *pgServer {
	c := *s
	c.db = db
	return &c
}

// clusterSums are the checksums of the cluster's test databases.
func clusterSums(s *pgServer, dbs ...string) map[string]string {
	out := map[string]string{}
	for _, db := range dbs {
		for table, sum := range s.in(db).checksums() {
			out[db+"/"+table] = sum
		}
	}
	return out
}

// TestPostgresCluster backs up a whole PostgreSQL cluster (--database all: roles, every
// database) and restores it into a fresh server (roles with their passwords, memberships,
// owners, every row); a restore killed (SIGKILL) in the middle of the third database leaves
// every database as it was; --database NAME takes one database out of it; verify counts the
// rows of every database.
func TestPostgresCluster(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	db.sql(`CREATE ROLE shop_owner LOGIN PASSWORD 'pw-shop-owner'`)
	db.sql(`CREATE ROLE readers NOLOGIN`)
	db.sql(`GRANT readers TO shop_owner`)
	// A tablespace: its directory must exist wherever the cluster is restored.
	tablespaceDir := func(s *pgServer) {
		docker(t, "exec", "-u", "0", s.container, "sh", "-c", `mkdir -p /srv/ts && chown "$(stat -c %u:%g /var/lib/postgresql/data)" /srv/ts`)
	}
	tablespaceDir(db)
	db.sql(`CREATE TABLESPACE fast OWNER shop_owner LOCATION '/srv/ts'`)
	db.sql(`CREATE DATABASE a_small OWNER shop_owner`)
	db.sql(`CREATE DATABASE b_big OWNER shop_owner`)
	db.in("a_small").sql(`CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g; ALTER TABLE items OWNER TO shop_owner; GRANT SELECT ON items TO readers;
		CREATE TABLE hot (x int) TABLESPACE fast; INSERT INTO hot SELECT generate_series(1, 10)`)
	docker(t, "exec", db.container, "pgbench", "-i", "-q", "-s", "1", "-U", db.user, "b_big")
	db.sql(`CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'in the POSTGRES_DB database')`)
	dbs := []string{"a_small", "appdb", "b_big"}
	before := clusterSums(db, dbs...)
	passwordOf := func(s *pgServer) string {
		return s.sql(`SELECT rolpassword FROM pg_authid WHERE rolname = 'shop_owner'`)
	}
	wantPassword := passwordOf(db)

	dir := t.TempDir()
	backup(t, "run", "db", "--project", p.name, "--to", dir, "--database", "all")
	m := onlyBackup(t, dir)
	var listed []string
	_ = json.Unmarshal([]byte(m.Source["databases"]), &listed)
	if m.Source["database"] != "all" || strings.Join(listed, ",") != "a_small,appdb,b_big,postgres" {
		t.Fatalf("the manifest does not list the databases: %+v", m.Source)
	}
	if m.Contents == nil || m.Contents.Tables["a_small/public.items"] != 100 || m.Contents.Tables["b_big/public.pgbench_accounts"] != 100000 || m.Contents.Tables["appdb/public.notes"] != 1 {
		t.Fatalf("the manifest does not count the rows of every database: %+v", m.Contents)
	}

	// Into a fresh server: roles, memberships, owners and every row.
	if m.Source["tablespaces"] != `["fast"]` {
		t.Errorf("the manifest does not list the tablespace: %+v", m.Source)
	}
	fresh := startPostgres(t, p, "fresh")
	tablespaceDir(fresh)
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "fresh", "--project", p.name, "--yes")
	if after := clusterSums(fresh, dbs...); !equalMaps(after, before) {
		t.Fatalf("the fresh server after the restore:\n%v\nwant\n%v", after, before)
	}
	if got := passwordOf(fresh); got != wantPassword || got == "" {
		t.Errorf("shop_owner's password hash is %q, want %q", got, wantPassword)
	}
	if got := fresh.sql(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'b_big'`); got != "shop_owner" {
		t.Errorf("b_big is owned by %q", got)
	}
	if got := fresh.sql(`SELECT pg_has_role('shop_owner', 'readers', 'MEMBER')`); got != "t" {
		t.Errorf("shop_owner is no longer a member of readers")
	}
	if got := fresh.in("a_small").sql(`SELECT tableowner FROM pg_tables WHERE tablename = 'items'`); got != "shop_owner" {
		t.Errorf("items is owned by %q", got)
	}
	if got := fresh.in("a_small").sql(`SELECT tablespace || ' ' || pg_tablespace_location((SELECT oid FROM pg_tablespace WHERE spcname = 'fast')) FROM pg_tables WHERE tablename = 'hot'`); got != "fast /srv/ts" {
		t.Errorf("the table hot is in %q, want the tablespace fast at /srv/ts", got)
	}

	// Changed and dropped on the fresh server, then a restore killed inside b_big (after
	// a_small and appdb were sent): every database as it was before, none half restored.
	fresh.in("a_small").sql(`DELETE FROM items WHERE id <= 50`)
	fresh.in("b_big").sql(`UPDATE pgbench_branches SET bbalance = bbalance + 1`)
	fresh.sql(`CREATE TABLE extra (x int)`)
	changed := clusterSums(fresh, dbs...)
	if equalMaps(changed, before) {
		t.Fatal("the changes changed nothing; the test would prove nothing")
	}
	interrupt := func(sig syscall.Signal) {
		t.Helper()
		// The fault plugin has a signing key of its own: the backup is another's.
		f := startFault(t, "restore-stream", "restore", m.Artifact, "--from", dir, "--to", "fresh", "--project", p.name, "--yes", "--allow-unsigned")
		f.waitPoint("restore-stream")
		if n, _ := strconv.Atoi(fresh.sql(`SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'`)); n < 2 {
			t.Errorf("%d sessions wait in a transaction at the fault point, want those of a_small and appdb at least", n)
		}
		f.kill(sig)
		eventually(t, 30*time.Second, "the interrupted restore's sessions ended", func() error {
			if n := fresh.sql(`SELECT count(*) FROM pg_stat_activity WHERE datname <> 'postgres' AND state <> 'active'`); n != "0" {
				return fmt.Errorf("%s sessions left", n)
			}
			return nil
		})
	}
	interrupt(syscall.SIGKILL)
	if after := clusterSums(fresh, dbs...); !equalMaps(after, changed) {
		t.Errorf("a killed cluster restore changed data:\n%v\nwant\n%v", after, changed)
	}
	// A missing database is created by the restore, and dropped again by one interrupted
	// (SIGINT: the plugin cleans up).
	fresh.sql(`DROP DATABASE a_small`)
	interrupt(syscall.SIGINT)
	if got := fresh.sql(`SELECT count(*) FROM pg_database WHERE datname = 'a_small'`); got != "0" {
		t.Errorf("the database a_small the interrupted restore created is still there")
	}
	for k, v := range clusterSums(fresh, "appdb", "b_big") {
		if v != changed[k] {
			t.Errorf("an interrupted cluster restore changed %s: %s, want %s", k, v, changed[k])
		}
	}

	// One database out of the cluster backup (missing: created): the others stay as they are.
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "fresh", "--project", p.name, "--yes", "--database", "a_small")
	after := clusterSums(fresh, dbs...)
	for k, v := range after {
		want := changed[k]
		if strings.HasPrefix(k, "a_small/") {
			want = before[k]
		}
		if v != want {
			t.Errorf("after restoring a_small alone, %s is %s, want %s", k, v, want)
		}
	}
	mustContain(t, backupFails(t, nil, "restore", m.Artifact, "--from", dir, "--to", "fresh", "--project", p.name, "--yes", "--database", "nope"),
		`no database "nope"`, "a_small, appdb, b_big, postgres")

	// The whole cluster again: as it was at the backup (the table made since is dropped by
	// nothing: a restore replaces what the backup holds).
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "fresh", "--project", p.name, "--yes")
	after = clusterSums(fresh, dbs...)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("after the full restore, %s is %s, want %s", k, after[k], v)
		}
	}

	// verify restores it into a scratch copy and counts every database's rows.
	r := verifyJSON(t, 0, m.Artifact, "--from", dir)
	if !r.Passed {
		t.Fatalf("verify of the cluster backup: %+v", r)
	}
	for _, table := range []string{"a_small/public.items", "b_big/public.pgbench_accounts", "appdb/public.notes"} {
		if c := check(t, r, "rows "+table); !c.Passed || c.Found != itoa(m.Contents.Tables[table]) {
			t.Errorf("check of %s: %+v", table, c)
		}
	}
	noScratchLeft(t, p, "db")
}
