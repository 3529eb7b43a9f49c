// Package mysql is the MySQL and MariaDB strategy: mysqldump or mariadb-dump in the database
// container, restored with its own client; verify counts the dump's INSERTed rows against
// COUNT(*).
package mysql

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Strategy dumps MySQL and MariaDB databases inside the database container with whichever dump
// tool it has (mariadb-dump, which MariaDB 11 images ship alone, or mysqldump), in one
// consistent transaction (--single-transaction), with routines, triggers and events.
//
// Credentials come from the container's environment in the official images' order:
// MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD (or their _FILE forms), an allowed empty root
// password, then MARIADB_USER + MARIADB_PASSWORD / MYSQL_USER + MYSQL_PASSWORD. The password
// reaches the tools through the exec's environment (MYSQL_PWD), never their command line.
//
// By default every user database is dumped (not mysql, sys, information_schema,
// performance_schema: accounts and grants come from the image's environment); each is
// dropped and recreated on restore, so tables created after the backup are gone too. Restore
// runs the container's own client, which stops at the first SQL error.
type Strategy struct {
	User      string
	Password  string
	Databases []string
}

// Name returns "mysql".
func (m *Strategy) Name() string { return "mysql" }

// Extension returns "sql".
func (m *Strategy) Extension() string { return "sql" }

var systemSchemas = []string{"information_schema", "performance_schema", "mysql", "sys"}

type mysqlConn struct {
	user      string
	env       []string
	dump, cli string // tool names found in the container
}

func (m *Strategy) conn(ctx context.Context, c *containers.Container) (*mysqlConn, error) {
	cn := &mysqlConn{}
	user, pw := m.User, m.Password
	if user == "" {
		var err error
		user, pw, err = mysqlCredentials(ctx, c)
		if err != nil {
			return nil, err
		}
	}
	cn.user = user
	if pw != "" {
		cn.env = []string{"MYSQL_PWD=" + pw}
	}
	for _, t := range []string{"mariadb-dump", "mysqldump"} {
		if _, err := c.Output(ctx, t, "--version"); err == nil {
			cn.dump = t
			break
		}
	}
	for _, t := range []string{"mariadb", "mysql"} {
		if _, err := c.Output(ctx, t, "--version"); err == nil {
			cn.cli = t
			break
		}
	}
	if cn.dump == "" || cn.cli == "" {
		return nil, fmt.Errorf("the container has neither mariadb-dump nor mysqldump (and their client): is it a MySQL or MariaDB server?")
	}
	return cn, nil
}

// mysqlCredentials reads the official images' variables, in their order of precedence.
func mysqlCredentials(ctx context.Context, c *containers.Container) (user, password string, err error) {
	for _, k := range []string{"MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"} {
		v, ok, err := c.Secret(ctx, k)
		if err != nil {
			return "", "", err
		}
		if ok {
			return "root", v, nil
		}
	}
	for _, k := range []string{"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "MYSQL_ALLOW_EMPTY_PASSWORD"} {
		if v, _ := c.Getenv(k); v != "" && v != "0" && !strings.EqualFold(v, "no") {
			return "root", "", nil
		}
	}
	for _, p := range []string{"MARIADB_", "MYSQL_"} {
		u, uok, err := c.Secret(ctx, p+"USER")
		if err != nil {
			return "", "", err
		}
		pw, pok, err := c.Secret(ctx, p+"PASSWORD")
		if err != nil {
			return "", "", err
		}
		if uok && pok {
			return u, pw, nil
		}
	}
	return "", "", fmt.Errorf("no credentials: the container sets none of MARIADB_ROOT_PASSWORD, MYSQL_ROOT_PASSWORD (or _FILE), MARIADB_USER/MARIADB_PASSWORD, MYSQL_USER/MYSQL_PASSWORD; name a user with --user and pass its password in DOCKER_BACKUP_PASSWORD")
}

func (cn *mysqlConn) query(ctx context.Context, c *containers.Container, sql string) (string, error) {
	var out strings.Builder
	err := c.Exec(ctx, containers.ExecSpec{
		Cmd:    []string{cn.cli, "--user=" + cn.user, "--batch", "--skip-column-names", "--execute", sql},
		Env:    cn.env,
		Stdout: &out,
	})
	return strings.TrimSpace(out.String()), err
}

// Backup streams the dump of the selected databases to w.
func (m *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if !c.Running {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("the container is not running: the dump needs the server up (start it, or back up its data with --strategy volume)"))
	}
	cn, err := m.conn(ctx, c)
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	dbs := m.Databases
	if len(dbs) == 0 {
		out, err := cn.query(ctx, c, "SHOW DATABASES")
		if err != nil {
			return nil, strategy.StepErr(c, "dump", fmt.Errorf("listing databases: %w", err))
		}
		for _, db := range strings.Split(out, "\n") {
			if db = strings.TrimSpace(db); db != "" && !slices.Contains(systemSchemas, strings.ToLower(db)) {
				dbs = append(dbs, db)
			}
		}
		if len(dbs) == 0 {
			return nil, strategy.StepErr(c, "dump", fmt.Errorf("the server has no databases besides the system ones: nothing to back up"))
		}
	}
	src := strategy.Source{"user": cn.user, "databases": strings.Join(dbs, ","), "dump_tool": cn.dump}
	if v, err := c.Output(ctx, cn.dump, "--version"); err == nil {
		src["dump_version"] = v
	}
	if v, err := cn.query(ctx, c, "SELECT VERSION()"); err == nil {
		src["server_version"] = v
	}
	cmd := []string{cn.dump, "--user=" + cn.user, "--single-transaction", "--routines", "--triggers", "--events",
		"--hex-blob", "--default-character-set=utf8mb4", "--add-drop-database", "--databases"}
	err = c.Exec(ctx, containers.ExecSpec{Cmd: append(cmd, dbs...), Env: cn.env, Stdout: w})
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	return src, nil
}

// Restore runs the dump through the container's client, which stops at the first error. The
// client runs in binary mode, which ignores its own commands (\! and system would run
// programs in the container; source would read its files): a dump holds SQL only.
//
// MySQL and MariaDB cannot roll back DDL, so a restore is not atomic: the artifact is
// verified completely before the client starts, but a restore cut part-way (a kill, a lost
// connection, an SQL error) leaves the databases before the cut restored and the others as
// they were. It is reported as failed, never as a success.
func (m *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	if !c.Running {
		return strategy.StepErr(c, "restore", fmt.Errorf("the container is not running: the client needs the server up"))
	}
	cn, err := m.conn(ctx, c)
	if err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	err = c.Exec(ctx, containers.ExecSpec{
		Cmd:   []string{cn.cli, "--user=" + cn.user, "--batch", "--binary-mode", "--default-character-set=utf8mb4"},
		Env:   cn.env,
		Stdin: data,
	})
	return strategy.StepErr(c, "restore", err)
}

// Interrupted says what a cut MySQL restore leaves: DDL commits as it goes.
func (m *Strategy) Interrupted() string {
	return "MySQL and MariaDB cannot roll back DDL: the databases of the dump may be partly restored (those before the interruption replaced, the rest as they were); restore again"
}

// ServerVersion reports the running server's version.
func (m *Strategy) ServerVersion(ctx context.Context, c *containers.Container) (string, error) {
	cn, err := m.conn(ctx, c)
	if err != nil {
		return "", err
	}
	return cn.query(ctx, c, "SELECT VERSION()")
}

var mysqlMajor = regexp.MustCompile(`^\d+\.\d+`)

// Major returns "10.11" of "10.11.6-MariaDB-0+deb12u1".
func (m *Strategy) Major(v string) string { return mysqlMajor.FindString(v) }
