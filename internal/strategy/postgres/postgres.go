// Package postgres is the PostgreSQL strategy: pg_dump of one database or, with AllDatabases,
// of the whole cluster with its roles (pgcluster.go); restores through psql in one transaction
// per database, the script read as it streams by a reader of pg_dump's output that refuses what
// pg_dump never writes (pgscript.go); verify counts each table's COPY rows against count(*).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Strategy dumps one database with pg_dump inside the database container, so the dump tool
// always matches the server. User and database come from the container's environment as the
// official postgres image reads them (POSTGRES_USER, default "postgres"; POSTGRES_DB, default
// the user), unless set here. The password, when one is needed, is passed in the exec's
// environment (PGPASSWORD), never on a command line.
//
// The dump is plain SQL with DROP ... IF EXISTS before each object, and restore runs it with
// psql in one transaction that stops at the first error and is committed only after the
// whole artifact was verified: afterwards every table in the dump holds exactly the dumped
// rows, tables dropped since the backup are back, and a failed or interrupted restore changes
// nothing.
type Strategy struct {
	User     string
	Database string
}

// Name returns "postgres".
func (p *Strategy) Name() string { return "postgres" }

// Extension returns "sql".
func (p *Strategy) Extension() string { return "sql" }

type pgConn struct {
	user, database string
	env            []string
}

func (p *Strategy) conn(c *containers.Container) pgConn {
	user := p.User
	if user == "" {
		user, _ = c.Getenv("POSTGRES_USER")
	}
	if user == "" {
		user = "postgres"
	}
	db := p.Database
	if db == "" {
		db, _ = c.Getenv("POSTGRES_DB")
	}
	if db == "" {
		db = user
	}
	var env []string
	if pw, ok := c.Getenv("POSTGRES_PASSWORD"); ok && pw != "" {
		env = append(env, "PGPASSWORD="+pw)
	}
	return pgConn{user: user, database: db, env: env}
}

// Backup streams pg_dump's output to w.
func (p *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if !c.Running {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("the container is not running: pg_dump needs the server up (start it, or back up its data with --strategy volume)"))
	}
	cn := p.conn(c)
	src := strategy.Source{"database": cn.database, "user": cn.user}
	if v, err := c.Output(ctx, "pg_dump", "--version"); err == nil {
		src["pg_dump_version"] = toolVersion(v)
	} else {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("pg_dump is not usable in the container: %w", err))
	}
	if v, err := p.serverVersion(ctx, c, cn); err == nil {
		src["server_version"] = v
	}
	if p.Database == AllDatabases {
		cn.database = p.maintenanceDB(c)
		return p.backupCluster(ctx, c, cn, src, w)
	}
	err := c.Exec(ctx, containers.ExecSpec{
		Cmd: []string{"pg_dump", "--no-password", "--clean", "--if-exists",
			"--username", cn.user, "--dbname", cn.database},
		Env:    cn.env,
		Stdout: w,
	})
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	return src, nil
}

// Restore runs the dump with psql inside one transaction that only the restore can commit:
// psql gets BEGIN, the script (without pg_dump's own BEGIN and COMMIT, see pgScript), and
// COMMIT only once the whole artifact was read and matched its manifest. A cut stream, a
// cancel, a killed plugin or sidecar, a timeout or an SQL error ends the session inside the
// open transaction, and PostgreSQL rolls it back: the database is exactly as before.
func (p *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	if !c.Running {
		return strategy.StepErr(c, "restore", fmt.Errorf("the container is not running: psql needs the server up"))
	}
	if data.Source["database"] == AllDatabases {
		return p.restoreCluster(ctx, c, data)
	}
	if p.Database == AllDatabases {
		return strategy.StepErr(c, "restore", fmt.Errorf("--database all restores a cluster backup, but %s is of the database %q", "this backup", data.Source["database"]))
	}
	cn := p.conn(c)
	pr, pw := io.Pipe()
	go func() {
		script := newPGScript(pw)
		_, err := io.WriteString(pw, "BEGIN;\n")
		if err == nil {
			_, err = io.Copy(script, data)
		}
		if err == nil {
			err = script.Close()
		}
		if err == nil {
			// Verified to the last byte: only now may the restore be committed.
			_, err = io.WriteString(pw, "\nCOMMIT;\n")
		}
		pw.CloseWithError(err)
	}()
	err := c.Exec(ctx, containers.ExecSpec{
		Cmd: []string{"psql", "--no-password", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
			"--username", cn.user, "--dbname", cn.database},
		Env:   cn.env,
		Stdin: pr,
	})
	pr.CloseWithError(errors.New("psql ended"))
	return strategy.StepErr(c, "restore", err)
}

// Check reads the script as psql would and refuses one that pg_dump would not have written.
func (p *Strategy) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	script := newPGScript(nil)
	if data.Source["database"] == AllDatabases {
		script.cluster = checkOnly()
		if p.Database != "" && p.Database != AllDatabases && !slices.Contains(clusterList(data.Source), p.Database) {
			return fmt.Errorf("the backup has no database %q (it has: %s)", p.Database, strings.Join(clusterList(data.Source), ", "))
		}
	}
	if _, err := io.Copy(script, data); err != nil {
		return err
	}
	return script.Close()
}

// OnePass: a database's restore is one transaction, committed after the last byte, and the
// script is checked (pgScript) as psql is given it. A cluster's roles commit first: no.
func (p *Strategy) OnePass(data strategy.Data) bool {
	return data.Source["database"] != AllDatabases && p.Database != AllDatabases
}

// Interrupted: nothing, PostgreSQL rolls the transaction back.
func (p *Strategy) Interrupted() string { return "" }

// ServerVersion reports the running server's version, for comparing with a backup's.
func (p *Strategy) ServerVersion(ctx context.Context, c *containers.Container) (string, error) {
	return p.serverVersion(ctx, c, p.conn(c))
}

func (p *Strategy) serverVersion(ctx context.Context, c *containers.Container, cn pgConn) (string, error) {
	var out strings.Builder
	err := c.Exec(ctx, containers.ExecSpec{
		Cmd: []string{"psql", "--no-password", "--no-psqlrc", "--tuples-only", "--no-align",
			"--username", cn.user, "--dbname", cn.database, "--command", "SHOW server_version"},
		Env:    cn.env,
		Stdout: &out,
	})
	if err != nil {
		return "", err
	}
	return strings.Fields(strings.TrimSpace(out.String()) + " ?")[0], nil
}

// Major returns the major part of a PostgreSQL version.
func (p *Strategy) Major(v string) string { return MajorVersion(v) }

// MajorVersion returns the major part of a PostgreSQL version ("15" of "15.18").
func MajorVersion(v string) string { return leadingDigits.FindString(v) }

var leadingDigits = regexp.MustCompile(`^\d+`)

var pgToolVersion = regexp.MustCompile(`\(PostgreSQL\)\s+(\S+)`)

// toolVersion extracts "15.18" from "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
func toolVersion(s string) string {
	if m := pgToolVersion.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}
