package mysql

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// mysqlCount counts the rows of each table in a mysqldump / mariadb-dump script: the tuples of
// its INSERT statements, tables named "database.table" after the script's USE statements.
// Tables created without rows count 0. It never fails: it only reads.
type mysqlCount struct {
	contents artifact.Contents
	db       string
	line     []byte // the start of the current line, outside INSERT values
	skipLine bool   // the line is longer than mysqlLineKeep: not one we look at
	table    string // the table of the INSERT being read
	inValues bool
	state    mysqlState
	depth    int
}

type mysqlState int

const (
	myOut      mysqlState = iota
	myStr                 // '...'
	myStrEsc              // after a backslash in a string
	myStrQuote            // after a quote in a string: its end, or the first of ''
)

const mysqlLineKeep = 512

var (
	mysqlUse    = regexp.MustCompile("^USE `((?:[^`]|``)+)`;")
	mysqlCreate = regexp.MustCompile("^CREATE TABLE `((?:[^`]|``)+)` \\(")
	mysqlInsert = regexp.MustCompile("^INSERT INTO `((?:[^`]|``)+)` VALUES ?$")
)

// NewCount counts the rows the dump inserts into each table.
func (m *Strategy) NewCount() strategy.Count { return &mysqlCount{} }

func (c *mysqlCount) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if c.inValues {
			c.value(b)
			continue
		}
		if b == '\n' {
			// MariaDB's dump tool ends the line after VALUES, one row per line.
			if !c.skipLine && !c.startValues() {
				c.endLine()
			}
			c.line, c.skipLine = c.line[:0], false
			continue
		}
		if c.skipLine {
			// The bulk of a line we do not look at: jump to its end.
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				break
			}
			i += j - 1
			continue
		}
		if len(c.line) == mysqlLineKeep {
			c.skipLine = true
			continue
		}
		c.line = append(c.line, b)
		if b == ' ' && bytes.HasSuffix(c.line, []byte(" VALUES ")) && c.startValues() {
			c.line = c.line[:0]
		}
	}
	return len(p), nil
}

// startValues starts counting the rows of an INSERT when the line so far is its start.
func (c *mysqlCount) startValues() bool {
	m := mysqlInsert.FindSubmatch(c.line)
	if m == nil {
		return false
	}
	c.table = c.qualified(unquoteBackticks(m[1]))
	c.contents.Tables, _ = artifact.Count(c.contents.Tables, c.table, 0)
	c.inValues, c.state, c.depth = true, myOut, 0
	return true
}

// value follows the tuples of an INSERT, counting those that open at depth 0.
func (c *mysqlCount) value(b byte) {
	switch c.state {
	case myStr:
		switch b {
		case '\\':
			c.state = myStrEsc
		case '\'':
			c.state = myStrQuote
		}
	case myStrEsc:
		c.state = myStr
	case myStrQuote:
		if b == '\'' { // '' inside a string
			c.state = myStr
			return
		}
		c.state = myOut
		c.value(b)
	default:
		switch b {
		case '\'':
			c.state = myStr
		case '(':
			if c.depth == 0 {
				if tables, ok := artifact.Count(c.contents.Tables, c.table, 1); ok {
					c.contents.Tables = tables
				}
			}
			c.depth++
		case ')':
			c.depth--
		case ';':
			if c.depth == 0 {
				c.inValues = false
				c.line, c.skipLine = c.line[:0], true // the rest of the line is its newline
			}
		}
	}
}

func (c *mysqlCount) endLine() {
	if m := mysqlUse.FindSubmatch(c.line); m != nil {
		c.db = unquoteBackticks(m[1])
	} else if m := mysqlCreate.FindSubmatch(c.line); m != nil {
		var ok bool
		if c.contents.Tables, ok = artifact.Count(c.contents.Tables, c.qualified(unquoteBackticks(m[1])), 0); !ok {
			c.contents.Truncated = true
		}
	}
}

func (c *mysqlCount) qualified(table string) string {
	if c.db == "" {
		return table
	}
	return c.db + "." + table
}

func unquoteBackticks(b []byte) string { return strings.ReplaceAll(string(b), "``", "`") }

func (c *mysqlCount) Contents() (*artifact.Contents, error) {
	if c.contents.Tables == nil {
		c.contents.Tables = map[string]int64{}
	}
	return &c.contents, nil
}

// NeedsServer: the client restores into a running server.
func (m *Strategy) NeedsServer() bool { return true }

// Ready waits until the server the image's entrypoint starts last accepts TCP connections on
// the loopback (its first-start initialisation runs a temporary server without networking).
func (m *Strategy) Ready(ctx context.Context, c *containers.Container, src strategy.Source) error {
	return strategy.WaitFor(ctx, c, 3*time.Minute, "the MySQL server", func(ctx context.Context) error {
		cn, err := m.conn(ctx, c)
		if err != nil {
			return err
		}
		return c.Exec(ctx, containers.ExecSpec{
			Cmd: []string{cn.cli, "--user=" + cn.user, "--protocol=tcp", "--host=127.0.0.1", "--batch", "--execute", "SELECT 1"},
			Env: cn.env, Stdout: nil,
		})
	})
}

// Found counts the rows of the restored tables ("database.table").
func (m *Strategy) Found(ctx context.Context, c *containers.Container, src strategy.Source, want *artifact.Contents) (*artifact.Contents, error) {
	cn, err := m.conn(ctx, c)
	if err != nil {
		return nil, err
	}
	quote := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	str := func(s string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
	}
	var dbs []string
	for _, db := range strings.Split(src["databases"], ",") {
		if db != "" {
			dbs = append(dbs, str(db))
		}
	}
	found := &artifact.Contents{Tables: map[string]int64{}}
	if len(dbs) == 0 {
		return found, nil
	}
	list, err := cn.query(ctx, c, "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema IN ("+strings.Join(dbs, ",")+")")
	if err != nil {
		return nil, fmt.Errorf("listing the restored tables: %w", err)
	}
	var queries []string
	for _, t := range strings.Split(list, "\n") {
		if db, table, ok := strings.Cut(strings.TrimSpace(t), "."); ok {
			queries = append(queries, fmt.Sprintf("SELECT %s, COUNT(*) FROM %s.%s", str(db+"."+table), quote(db), quote(table)))
		}
	}
	if err := strategy.CountInBatches(queries, func(q string) (string, error) { return cn.query(ctx, c, q) }, found.Tables); err != nil {
		return nil, err
	}
	return found, nil
}
