package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// AllDatabases is the database name that backs up a whole PostgreSQL cluster.
const AllDatabases = "all"

// A cluster dump (database "all") is one psql script that a superuser can also run by hand
// (psql -f): the roles, each created only when missing, then for each database a CREATE
// DATABASE with its owner, encoding and locale, a \connect to it, and pg_dump's script of it:
//
//	-- docker-backup: PostgreSQL cluster dump ...
//	DO $docker_backup$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN NULL; END $docker_backup$;
//	ALTER ROLE app WITH ... PASSWORD 'SCRAM-SHA-256$...';
//	CREATE DATABASE app WITH TEMPLATE = template0 OWNER = app ENCODING = 'UTF8' ...;
//	\connect -reuse-previous=on "dbname='app'"
//	-- (pg_dump --clean --if-exists of app)
//
// Tablespaces (CREATE TABLESPACE ... LOCATION) come between the roles and the databases.
//
// The restore reads it with pgScript in cluster mode: the roles run and commit first (the
// databases' objects need them), the missing tablespaces are created; each database's section runs in its own transaction in its
// own psql session, a missing database being created just before; the transactions commit
// together once the whole artifact was read and verified. A failure or an interruption
// before that rolls every database back and drops the databases the restore created.

// connectLine is pg_dumpall's form of \connect: the name as a conninfo value, so that a
// name with "=" is not read as a connection string.
var connectLine = regexp.MustCompile(`^\\connect -reuse-previous=on "dbname='((?:[^'\\"]|\\.|"")*)'"$`)

// formatConnect writes the \connect line of database db.
func formatConnect(db string) string {
	v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db)
	return `\connect -reuse-previous=on "dbname='` + strings.ReplaceAll(v, `"`, `""`) + `'"`
}

// parseConnect reads a line formatConnect wrote.
func parseConnect(line string) (string, bool) {
	m := connectLine.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	v := strings.ReplaceAll(m[1], `""`, `"`)
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), true
}

// clusterDatabases lists the databases a cluster dump holds: every one that accepts
// connections, templates left out; with the statement that creates each as it is.
func (p *Strategy) clusterDatabases(ctx context.Context, c *containers.Container, cn pgConn) (names, creates []string, err error) {
	out, err := cn.psql(ctx, c, cn.database, `SELECT datname, format('CREATE DATABASE %I WITH TEMPLATE = template0 OWNER = %I ENCODING = %L LC_COLLATE = %L LC_CTYPE = %L;',
  datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype)
FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname;`)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the databases: %w", err)
	}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		name, create, ok := strings.Cut(line, "\t")
		if !ok || strings.ContainsAny(name, "\t\n\r") {
			return nil, nil, fmt.Errorf("cannot read the database list line %q (a database name with a tab or a new line is not supported)", line)
		}
		names, creates = append(names, name), append(creates, create)
	}
	return names, creates, nil
}

// psql runs sql in database db and returns its unaligned, tab-separated output.
func (cn pgConn) psql(ctx context.Context, c *containers.Container, db, sql string) (string, error) {
	var out strings.Builder
	err := c.Exec(ctx, containers.ExecSpec{
		Cmd: []string{"psql", "--no-password", "--no-psqlrc", "--tuples-only", "--no-align", "--field-separator", "\t",
			"--set", "ON_ERROR_STOP=1", "--username", cn.user, "--dbname", db},
		Env: cn.env, Stdin: strings.NewReader(sql), Stdout: &out,
	})
	return out.String(), err
}

// backupCluster writes the cluster dump of every database to w.
func (p *Strategy) backupCluster(ctx context.Context, c *containers.Container, cn pgConn, src strategy.Source, w io.Writer) (strategy.Source, error) {
	names, creates, err := p.clusterDatabases(ctx, c, cn)
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	list, _ := json.Marshal(names)
	src["database"], src["databases"] = AllDatabases, string(list)
	if _, err := fmt.Fprintf(w, "--\n-- docker-backup: PostgreSQL cluster dump: the roles (each created when missing), then every database.\n-- Restore by hand as a superuser: psql -f FILE postgres\n--\n\n"); err != nil {
		return nil, err
	}
	var roles bytes.Buffer
	if err := c.Exec(ctx, containers.ExecSpec{Cmd: []string{"pg_dumpall", "--no-password", "--roles-only", "--username", cn.user},
		Env: cn.env, Stdout: &limitedBuffer{b: &roles, max: 64 << 20}}); err != nil {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("pg_dumpall --roles-only: %w", err))
	}
	if err := writeRoles(w, roles.Bytes(), cn.user); err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	// Tablespaces other than the built-in ones: their directories must exist on the server a
	// restore goes to (as for pg_dumpall).
	spaces, err := cn.psql(ctx, c, cn.database, `SELECT spcname, pg_tablespace_location(oid), format('CREATE TABLESPACE %I OWNER %I LOCATION %L;', spcname, pg_get_userbyid(spcowner), pg_tablespace_location(oid))
FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY spcname;`)
	if err != nil {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("listing the tablespaces: %w", err))
	}
	var spaceNames []string
	locations := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(spaces, "\n"), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		name, create := f[0], f[2]
		spaceNames, locations[name] = append(spaceNames, name), f[1]
		if _, err := fmt.Fprintf(w, "\n%s\n", create); err != nil {
			return nil, err
		}
	}
	if len(spaceNames) > 0 {
		list, _ := json.Marshal(spaceNames)
		locs, _ := json.Marshal(locations)
		src["tablespaces"], src["tablespace_locations"] = string(list), string(locs)
	}
	for i, db := range names {
		if _, err := fmt.Fprintf(w, "\n%s\n%s\n", creates[i], formatConnect(db)); err != nil {
			return nil, err
		}
		err := c.Exec(ctx, containers.ExecSpec{
			Cmd:    []string{"pg_dump", "--no-password", "--clean", "--if-exists", "--username", cn.user, "--dbname", db},
			Env:    cn.env,
			Stdout: w,
		})
		if err != nil {
			return nil, strategy.StepErr(c, "dump", fmt.Errorf("database %s: %w", db, err))
		}
	}
	return src, nil
}

// limitedBuffer refuses to hold more than max bytes.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, fmt.Errorf("more than %d bytes of roles", l.max)
	}
	return l.b.Write(p)
}

var createRole = regexp.MustCompile(`^CREATE ROLE ((?:"(?:[^"]|"")+")|[a-z_][a-z0-9_$]*);$`)

// writeRoles writes pg_dumpall's roles so that they can run on a server that has some of
// them: CREATE ROLE only when missing; the role the dump connects as (the server's own
// superuser, POSTGRES_USER) is left as the server has it.
func writeRoles(w io.Writer, dump []byte, self string) error {
	selfIDs := []string{self, `"` + strings.ReplaceAll(self, `"`, `""`) + `"`}
	sc := bufio.NewScanner(bytes.NewReader(dump))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := createRole.FindStringSubmatch(line); m != nil {
			if slices.Contains(selfIDs, m[1]) {
				continue
			}
			if strings.Contains(m[1], "$docker_backup$") {
				return fmt.Errorf("a role is named %s", m[1])
			}
			line = "DO $docker_backup$ BEGIN CREATE ROLE " + m[1] + "; EXCEPTION WHEN duplicate_object THEN NULL; END $docker_backup$;"
		}
		for _, id := range selfIDs {
			if strings.HasPrefix(line, "ALTER ROLE "+id+" WITH ") {
				line = "-- (the role " + id + " is left as the server has it)"
			}
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return sc.Err()
}

// clusterList reads the databases a cluster backup recorded.
func clusterList(src strategy.Source) []string {
	var names []string
	_ = json.Unmarshal([]byte(src["databases"]), &names)
	return names
}

// pgSession is one psql reading a database's SQL inside one transaction.
type pgSession struct {
	db   string
	pw   *io.PipeWriter
	done chan error
}

// openSession starts psql on database db and begins the transaction.
func (cn pgConn) openSession(ctx context.Context, c *containers.Container, db string) *pgSession {
	pr, pw := io.Pipe()
	s := &pgSession{db: db, pw: pw, done: make(chan error, 1)}
	go func() {
		err := c.Exec(ctx, containers.ExecSpec{
			Cmd: []string{"psql", "--no-password", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
				"--username", cn.user, "--dbname", db},
			Env:   cn.env,
			Stdin: pr,
		})
		pr.CloseWithError(errors.New("psql ended"))
		s.done <- err
	}()
	_, _ = io.WriteString(pw, "BEGIN;\n")
	return s
}

// commit ends the transaction with COMMIT and waits for psql.
func (s *pgSession) commit() error {
	_, err := io.WriteString(s.pw, "\nCOMMIT;\n")
	s.pw.Close()
	if perr := <-s.done; perr != nil {
		return perr
	}
	return err
}

// abort ends psql's input without COMMIT: PostgreSQL rolls the transaction back.
func (s *pgSession) abort() error {
	s.pw.CloseWithError(errors.New("restore aborted"))
	return <-s.done
}

// clusterRestore applies a cluster dump: see the comment at the top of this file.
type clusterRestore struct {
	ctx     context.Context
	c       *containers.Container
	cn      pgConn
	only    string // restore only this database ("" every one)
	globals *pgSession
	dbs     []*pgSession
	created []string
	pending string // the CREATE DATABASE read before the next \connect
	// spaces are the CREATE TABLESPACE statements read, run after the roles commit;
	// createdSpaces those the restore created.
	spaces        []string
	createdSpaces []string
}

func (p *Strategy) restoreCluster(ctx context.Context, c *containers.Container, data strategy.Data) error {
	cn := p.conn(c)
	cn.database = p.maintenanceDB(c)
	r := &clusterRestore{ctx: ctx, c: c, cn: cn}
	if p.Database != "" && p.Database != AllDatabases {
		if dbs := clusterList(data.Source); !slices.Contains(dbs, p.Database) {
			return strategy.StepErr(c, "restore", fmt.Errorf("the backup has no database %q (it has: %s)", p.Database, strings.Join(dbs, ", ")))
		}
		r.only = p.Database
	}
	r.globals = cn.openSession(ctx, c, cn.database)
	script := newPGScript(r.globals.pw)
	script.cluster = &clusterHooks{connect: r.connect, createDatabase: func(stmt string) error { r.pending = stmt; return nil },
		createTablespace: func(stmt string) error { r.spaces = append(r.spaces, stmt); return nil }}
	_, err := io.Copy(script, data)
	if err == nil {
		err = script.Close()
	}
	if err == nil {
		// Verified to the last byte: only now may the databases be committed.
		err = r.commit()
	}
	if err != nil {
		return strategy.StepErr(c, "restore", r.abort(err))
	}
	return nil
}

// maintenanceDB is the database the restore connects to for roles and CREATE DATABASE.
func (p *Strategy) maintenanceDB(c *containers.Container) string {
	q := *p
	q.Database = ""
	return q.conn(c).database
}

// connect commits the roles (at the first database), creates database db when it is missing
// and opens its session.
func (r *clusterRestore) connect(db string) (io.Writer, error) {
	if err := r.commitGlobals(); err != nil {
		return nil, err
	}
	create := r.pending
	r.pending = ""
	if r.only != "" && db != r.only {
		return nil, nil
	}
	out, err := r.cn.psql(r.ctx, r.c, r.cn.database, "SELECT count(*) FROM pg_database WHERE datname = '"+strings.ReplaceAll(db, "'", "''")+"';")
	if err != nil {
		return nil, fmt.Errorf("looking for database %s: %w", db, err)
	}
	if strings.TrimSpace(out) == "0" {
		if create == "" {
			return nil, fmt.Errorf("the section of database %s has no CREATE DATABASE: %w", db, ErrNotPgDump)
		}
		if _, err := r.cn.psql(r.ctx, r.c, r.cn.database, create); err != nil {
			return nil, fmt.Errorf("creating database %s: %w", db, err)
		}
		r.created = append(r.created, db)
	}
	s := r.cn.openSession(r.ctx, r.c, db)
	r.dbs = append(r.dbs, s)
	return s.pw, nil
}

// commitGlobals commits the roles, then creates the missing tablespaces (once).
func (r *clusterRestore) commitGlobals() error {
	if r.globals == nil {
		return nil
	}
	g := r.globals
	r.globals = nil
	if err := g.commit(); err != nil {
		return fmt.Errorf("the roles: %w", err)
	}
	for _, stmt := range r.spaces {
		m := createTablespace.FindStringSubmatch(stmt)
		if m == nil {
			return fmt.Errorf("the script runs %q, which is not how a cluster dump creates a tablespace: %w", truncate(stmt, 80), ErrNotPgDump)
		}
		name := unquoteIdent(m[1])
		out, err := r.cn.psql(r.ctx, r.c, r.cn.database, "SELECT count(*) FROM pg_tablespace WHERE spcname = '"+strings.ReplaceAll(name, "'", "''")+"';")
		if err != nil {
			return fmt.Errorf("looking for tablespace %s: %w", name, err)
		}
		if strings.TrimSpace(out) != "0" {
			continue
		}
		if _, err := r.cn.psql(r.ctx, r.c, r.cn.database, stmt); err != nil {
			return fmt.Errorf("creating tablespace %s (its directory must exist on the server, empty, owned by the postgres user): %w", name, err)
		}
		r.createdSpaces = append(r.createdSpaces, name)
	}
	return nil
}

var createTablespace = regexp.MustCompile(`^CREATE TABLESPACE ((?:"(?:[^"]|"")+")|[a-z_][a-z0-9_$]*) OWNER `)

// unquoteIdent reads an identifier as quote_ident wrote it.
func unquoteIdent(s string) string {
	if strings.HasPrefix(s, `"`) {
		return strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`), `""`, `"`)
	}
	return s
}

// commit commits the roles (a dump without databases) and every database, in order.
func (r *clusterRestore) commit() error {
	if err := r.commitGlobals(); err != nil {
		return err
	}
	if r.only != "" && len(r.dbs) == 0 {
		return fmt.Errorf("the backup holds no section of database %s", r.only)
	}
	var committed []string
	for i, s := range r.dbs {
		if err := s.commit(); err != nil {
			for _, rest := range r.dbs[i+1:] {
				_ = rest.abort()
			}
			r.dbs = nil
			if len(committed) > 0 {
				return fmt.Errorf("database %s: %w (already committed: %s; the others are as before)", s.db, err, strings.Join(committed, ", "))
			}
			return fmt.Errorf("database %s: %w", s.db, err)
		}
		committed = append(committed, s.db)
	}
	r.dbs, r.created, r.createdSpaces = nil, nil, nil
	return nil
}

// abort rolls back every open transaction and drops the databases the restore created. The
// error of a psql that failed explains the failure better than the closed pipe it caused.
func (r *clusterRestore) abort(cause error) error {
	sessions := r.dbs
	if r.globals != nil {
		sessions = append([]*pgSession{r.globals}, sessions...)
	}
	for _, s := range sessions {
		if err := s.abort(); err != nil && strings.Contains(cause.Error(), "psql ended") {
			cause = fmt.Errorf("database %s: %w", s.db, err)
		}
	}
	ctx := context.WithoutCancel(r.ctx)
	for _, db := range r.created {
		if _, err := r.cn.psql(ctx, r.c, r.cn.database, fmt.Sprintf("DROP DATABASE IF EXISTS %s;", quoteIdent(db))); err != nil {
			cause = fmt.Errorf("%w (and the database %s it created could not be dropped: %v)", cause, db, err)
		}
	}
	for _, ts := range r.createdSpaces {
		if _, err := r.cn.psql(ctx, r.c, r.cn.database, fmt.Sprintf("DROP TABLESPACE IF EXISTS %s;", quoteIdent(ts))); err != nil {
			cause = fmt.Errorf("%w (and the tablespace %s it created could not be dropped: %v)", cause, ts, err)
		}
	}
	return cause
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// checkOnly reads a cluster dump without running it.
func checkOnly() *clusterHooks {
	none := func(string) error { return nil }
	return &clusterHooks{connect: func(string) (io.Writer, error) { return nil, nil }, createDatabase: none, createTablespace: none}
}

// makeTablespaceDirs creates the directories of a cluster backup's tablespaces in a scratch
// copy of the server, owned as its data directory is: they are outside its volumes.
func makeTablespaceDirs(ctx context.Context, c *containers.Container, src strategy.Source) error {
	var locations map[string]string
	_ = json.Unmarshal([]byte(src["tablespace_locations"]), &locations)
	for name, dir := range locations {
		err := c.Exec(ctx, containers.ExecSpec{User: "0", Cmd: []string{"sh", "-c",
			`mkdir -p "$1" && chown "$(stat -c %u:%g "${PGDATA:-/var/lib/postgresql/data}")" "$1"`, "sh", dir}})
		if err != nil {
			return fmt.Errorf("creating the directory of tablespace %s: %w", name, err)
		}
	}
	return nil
}
