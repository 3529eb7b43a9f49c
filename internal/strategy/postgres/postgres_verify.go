package postgres

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// pgCount counts each table's COPY rows as the dump streams, and checks on the way that it is
// a script the restore accepts.
type pgCount struct{ script *pgScript }

// NewCount counts the rows of each table's COPY block.
func (p *Strategy) NewCount() strategy.Count {
	c := &pgCount{script: newPGScript(nil)}
	if p.Database == AllDatabases {
		c.script.cluster = checkOnly() // tables counted as database/schema.table
	}
	return c
}

func (c *pgCount) Write(b []byte) (int, error) { return c.script.Write(b) }

func (c *pgCount) Contents() (*artifact.Contents, error) {
	if err := c.script.Close(); err != nil {
		return nil, fmt.Errorf("the dump is not one the restore would accept: %w", err)
	}
	out := &artifact.Contents{Tables: map[string]int64{}}
	tables, rows := c.script.Rows()
	for _, t := range tables {
		var ok bool
		if out.Tables, ok = artifact.Count(out.Tables, t, rows[t]); !ok {
			out.Truncated = true
		}
	}
	return out, nil
}

// NeedsServer: psql restores into a running server.
func (p *Strategy) NeedsServer() bool { return true }

// Ready waits for the server the image's entrypoint starts last (its first-start
// initialisation runs a temporary server without TCP, so ready means accepting TCP on the
// loopback), then creates the backed-up database and its owner when the image's environment
// did not.
func (p *Strategy) Ready(ctx context.Context, c *containers.Container, src strategy.Source) error {
	cn := p.conn(c)
	port := "5432"
	if v, ok := c.Getenv("PGPORT"); ok && v != "" {
		port = v
	}
	err := strategy.WaitFor(ctx, c, 3*time.Minute, "the PostgreSQL server", func(ctx context.Context) error {
		return c.Exec(ctx, containers.ExecSpec{Cmd: []string{"pg_isready", "--quiet", "--host", "127.0.0.1", "--port", port,
			"--username", cn.user, "--dbname", "postgres"}, Env: cn.env})
	})
	if err != nil {
		return err
	}
	db := src["database"]
	if db == AllDatabases {
		db = "" // the restore creates every database
		if err := makeTablespaceDirs(ctx, c, src); err != nil {
			return err
		}
	}
	// psql variables quote the names: nothing the manifest says is run as SQL.
	script := `SELECT format('CREATE ROLE %I', :'role') WHERE :'role' <> '' AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('CREATE DATABASE %I', :'db') WHERE :'db' <> '' AND NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
`
	return c.Exec(ctx, containers.ExecSpec{
		Cmd: []string{"psql", "--no-password", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
			"--set", "db=" + db, "--set", "role=" + src["user"], "--username", cn.user, "--dbname", "postgres"},
		Env: cn.env, Stdin: strings.NewReader(script),
	})
}

// pgTableName is how pg_dump names a table in COPY: schema.table, each plain or quoted.
var pgTableName = regexp.MustCompile(`^(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\.(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)$`)

// Found counts the rows of the restored tables, named as pg_dump names them.
func (p *Strategy) Found(ctx context.Context, c *containers.Container, src strategy.Source, want *artifact.Contents) (*artifact.Contents, error) {
	cn := p.conn(c)
	if src["database"] != AllDatabases {
		return p.foundIn(ctx, c, cn, cn.database, "", want)
	}
	// A cluster: each database's tables, named database/schema.table.
	found := &artifact.Contents{Tables: map[string]int64{}}
	for _, db := range clusterList(src) {
		part, err := p.foundIn(ctx, c, cn, db, db+"/", want)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db, err)
		}
		maps.Copy(found.Tables, part.Tables)
	}
	return found, nil
}

// foundIn counts the rows of the tables of want (named prefix+schema.table) in database db.
func (p *Strategy) foundIn(ctx context.Context, c *containers.Container, cn pgConn, db, prefix string, want *artifact.Contents) (*artifact.Contents, error) {
	psql := func(sql string) (string, error) { return cn.psql(ctx, c, db, sql) }
	// The tables that exist, as pg_dump's fmtId would quote them (quote_ident's rules).
	list, err := psql(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%';`)
	if err != nil {
		return nil, fmt.Errorf("listing the restored tables: %w", err)
	}
	exists := map[string]bool{}
	for _, t := range strings.Split(strings.TrimSpace(list), "\n") {
		if t != "" {
			exists[t] = true
		}
	}
	var queries []string
	if want != nil {
		for name := range want.Tables {
			t, ok := strings.CutPrefix(name, prefix)
			if ok && exists[t] && pgTableName.MatchString(t) {
				queries = append(queries, fmt.Sprintf("SELECT '%s', count(*) FROM %s", strings.ReplaceAll(name, "'", "''"), t))
			}
		}
	}
	found := &artifact.Contents{Tables: map[string]int64{}}
	if err := strategy.CountInBatches(queries, func(q string) (string, error) { return psql(q + ";") }, found.Tables); err != nil {
		return nil, err
	}
	return found, nil
}
