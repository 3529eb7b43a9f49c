package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// NewCount records the rows of each table, counted with the container's sqlite3 shell on the
// consistent copy an online backup makes (a stopped copy, without the shell, counts nothing).
func (s *Strategy) NewCount() strategy.Count {
	s.count = &discardCount{}
	return s.count
}

// countRows counts the rows of every table of the database file at p in the container.
func (s *Strategy) countRows(ctx context.Context, c *containers.Container, p string) (*artifact.Contents, error) {
	names, err := c.Output(ctx, "sqlite3", "-readonly", p, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
	if err != nil {
		return nil, err
	}
	contents := &artifact.Contents{Tables: map[string]int64{}}
	var queries []string
	for _, name := range strings.Split(strings.TrimSpace(names), "\n") {
		if name == "" || strings.ContainsAny(name, "\t\r") {
			continue
		}
		if len(queries) >= artifact.MaxCounted {
			contents.Truncated = true
			break
		}
		queries = append(queries, fmt.Sprintf("SELECT %s, count(*) FROM %s", sqlString(name), sqlIdent(name)))
	}
	run := func(q string) (string, error) {
		return c.Output(ctx, "sqlite3", "-readonly", "-separator", "\t", p, q+";")
	}
	return contents, strategy.CountInBatches(queries, run, contents.Tables)
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func sqlIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// NeedsServer: the database file is written into the scratch container without starting it.
func (s *Strategy) NeedsServer() bool { return false }

// Ready has nothing to wait for.
func (s *Strategy) Ready(context.Context, *containers.Container, strategy.Source) error { return nil }

// Found copies the restored database (and its WAL) out of the scratch container into a
// temporary directory and opens it with this program's own SQLite: PRAGMA integrity_check,
// then the rows of every table. The image needs no sqlite3 shell.
func (s *Strategy) Found(ctx context.Context, c *containers.Container, src strategy.Source, _ *artifact.Contents) (*artifact.Contents, error) {
	p := s.Path
	if p == "" {
		p = src["path"]
	}
	if err := (&Strategy{Path: p}).check(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "docker-backup-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "db.sqlite")
	for _, suffix := range []string{"", "-wal"} {
		if err := copyOut(ctx, c, p+suffix, local+suffix); err != nil && !(suffix != "" && isNotFound(err)) {
			return nil, fmt.Errorf("copying %s out of the scratch container: %w", path.Base(p+suffix), err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: local}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	found := &artifact.Contents{Tables: map[string]int64{}}
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, err
		}
		problems = append(problems, line)
	}
	rows.Close()
	found.Integrity = strings.Join(problems, "; ")
	var names []string
	rows, err = db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		var count int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+sqlIdent(n)).Scan(&count); err != nil {
			return nil, fmt.Errorf("counting the rows of %s: %w", n, err)
		}
		found.Tables[n] = count
	}
	return found, nil
}

// copyOut copies the file at p in the container to the local file dst.
func copyOut(ctx context.Context, c *containers.Container, p, dst string) error {
	rc, _, err := c.OpenFile(ctx, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// discardCount counts nothing; its Contents are filled in by the strategy's Backup.
type discardCount struct{ contents *artifact.Contents }

func (discardCount) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardCount) Contents() (*artifact.Contents, error) { return d.contents, nil }
