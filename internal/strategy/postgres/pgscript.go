package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// pgScript follows a plain-text pg_dump script as psql reads it — SQL with its quotes,
// dollar quotes and comments, psql meta-commands, and COPY ... FROM stdin data blocks — in
// one streaming pass with bounded memory. It serves three purposes:
//
//   - a restore must be one transaction that only the restore commits: pg_dump writes BEGIN;
//     and COMMIT; of its own around large objects, which would commit half a restore, so the
//     script's top-level BEGIN and COMMIT statements are left out of what psql receives;
//   - a script that is not what pg_dump writes is refused before psql sees it: meta-commands
//     other than \restrict and \unrestrict (\! would run a shell in the database container),
//     other transaction control (END, ROLLBACK, ...), a script cut inside a statement;
//   - the rows of each table's COPY block are counted.
//
// Write feeds it the script; what psql should receive goes to the writer given to
// newPGScript (none: check only). Close reports a script that ended where pg_dump's never do.
type pgScript struct {
	out io.Writer
	buf []byte // output of the current Write

	state   pgState
	tag     []byte // the "$tag$" of the dollar quote we are in, or being read
	win     []byte // the last len(tag) bytes inside a dollar quote
	depth   int    // nesting of /* */ comments
	eString bool   // inside E'...': backslash escapes apply
	prev    byte   // the previous SQL byte outside quotes and comments
	line    int    // bytes on the current line outside comments (0: at its start)

	meta    []byte // the meta-command line being read, bounded
	stmt    []byte // the start of the current statement, upper-cased, to classify it
	holding bool   // the statement may be BEGIN or COMMIT: its bytes are held
	held    []byte

	copyLine  []byte // the start of the current COPY data line, enough to see the end marker
	copyTable string
	rows      map[string]int64
	tables    []string // in order of appearance

	// cluster, when set, reads a cluster dump (see pgcluster.go): the \connect lines it
	// writes between databases and its CREATE DATABASE statements go to these hooks instead
	// of psql, and tables are counted as "database/schema.table".
	cluster *clusterHooks
	db      string // the database of the section being read (cluster dumps)
}

// clusterHooks receive the parts of a cluster dump that are not one database's SQL.
type clusterHooks struct {
	// connect starts the section of database db; what follows goes to the writer it returns
	// (nil: nowhere).
	connect func(db string) (io.Writer, error)
	// createDatabase receives a CREATE DATABASE statement, ";" included; createTablespace
	// a CREATE TABLESPACE one.
	createDatabase   func(stmt string) error
	createTablespace func(stmt string) error
}

// maxHeld bounds a statement held whole (a cluster dump's CREATE DATABASE).
const maxHeld = 64 << 10

type pgState int

const (
	pgSQL          pgState = iota
	pgDash                 // after '-': a comment if another follows
	pgSlash                // after '/': a comment if '*' follows
	pgQuote                // '...'
	pgQuoteEnd             // after the quote that may end '...' (or be half of '')
	pgEscape               // after a backslash inside E'...'
	pgIdent                // "..."
	pgDollarTag            // reading "$tag$"
	pgDollar               // inside $tag$...$tag$
	pgLineComment          // -- ...
	pgBlockComment         // /* ... */
	pgBlockStar            // after '*' in a block comment
	pgBlockSlash           // after '/' in a block comment
	pgMeta                 // \command ... to the end of the line
	pgCopyPending          // the rest of the line of "COPY ... FROM stdin;"
	pgCopy                 // COPY data, to the line "\."
)

// stmtKeep is how much of a statement's start is kept to classify it; metaKeep bounds a
// meta-command line.
const (
	stmtKeep = 512
	metaKeep = 256
)

// ErrNotPgDump is wrapped when a script holds what pg_dump never writes.
var ErrNotPgDump = errors.New("not a pg_dump script")

func newPGScript(out io.Writer) *pgScript {
	return &pgScript{out: out, rows: map[string]int64{}}
}

// Write feeds the next bytes of the script.
func (s *pgScript) Write(p []byte) (int, error) {
	s.buf = s.buf[:0]
	for i := 0; i < len(p); {
		if s.state == pgCopy {
			// The bulk of a dump: pass whole lines through.
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				s.copyBytes(p[i:])
				s.buf = append(s.buf, p[i:]...)
				i = len(p)
				continue
			}
			s.copyBytes(p[i : i+j])
			s.buf = append(s.buf, p[i:i+j+1]...)
			s.endCopyLine()
			i += j + 1
			continue
		}
		if err := s.step(p[i]); err != nil {
			return i, err
		}
		i++
	}
	if s.out != nil && len(s.buf) > 0 {
		if _, err := s.out.Write(s.buf); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

func (s *pgScript) copyBytes(b []byte) {
	if room := 4 - len(s.copyLine); room > 0 {
		s.copyLine = append(s.copyLine, b[:min(len(b), room)]...)
	}
}

func (s *pgScript) endCopyLine() {
	if line := bytes.TrimSuffix(s.copyLine, []byte("\r")); string(line) == `\.` {
		s.state, s.line = pgSQL, 0
	} else {
		s.rows[s.copyTable]++
	}
	s.copyLine = s.copyLine[:0]
}

// put passes a byte to psql, or holds it while the statement may be BEGIN or COMMIT.
func (s *pgScript) put(b byte) {
	if s.holding {
		s.held = append(s.held, b)
		return
	}
	s.buf = append(s.buf, b)
}

// step handles one byte outside COPY data.
func (s *pgScript) step(b byte) error {
	switch s.state {
	case pgDash, pgSlash:
		return s.commentStart(b)
	case pgQuote, pgEscape, pgQuoteEnd, pgIdent:
		return s.quoted(b)
	case pgDollarTag, pgDollar:
		return s.dollarQuoted(b)
	case pgLineComment, pgBlockComment, pgBlockStar, pgBlockSlash:
		s.comment(b)
		return nil
	case pgMeta:
		return s.metaByte(b)
	case pgCopyPending:
		s.put(b)
		if b == '\n' {
			s.state, s.copyLine = pgCopy, s.copyLine[:0]
		}
		return nil
	}
	return s.sqlState(b)
}

// commentStart handles the byte after a '-' or '/' that may begin a comment.
func (s *pgScript) commentStart(b byte) error {
	switch s.state {
	case pgDash:
		if b == '-' {
			s.put('-')
			s.put(b)
			s.state = pgLineComment
			return nil
		}
		s.state = pgSQL
		s.sqlByte('-')
	case pgSlash:
		if b == '*' {
			s.put('/')
			s.put(b)
			s.state, s.depth = pgBlockComment, 1
			return nil
		}
		s.state = pgSQL
		s.sqlByte('/')
	}
	return s.step(b)
}

// quoted handles a byte of a '...' string or a "..." identifier.
func (s *pgScript) quoted(b byte) error {
	switch s.state {
	case pgQuote:
		s.put(b)
		switch {
		case b == '\'':
			s.state = pgQuoteEnd
		case b == '\\' && s.eString:
			s.state = pgEscape
		}
	case pgEscape:
		s.put(b)
		s.state = pgQuote
	case pgQuoteEnd:
		if b == '\'' { // '' is a quote inside the string
			s.put(b)
			s.state = pgQuote
			return nil
		}
		s.state = pgSQL
		return s.step(b)
	case pgIdent:
		s.put(b)
		s.addStmt([]byte{b}) // identifiers name the COPY's table
		if b == '"' {
			s.state = pgSQL // "" reads as an end and a new start: the same
		}
	}
	return nil
}

// dollarQuoted handles a byte of a "$tag$" or of the $tag$...$tag$ string it begins.
func (s *pgScript) dollarQuoted(b byte) error {
	if s.state == pgDollar {
		s.put(b)
		if len(s.win) == len(s.tag) {
			copy(s.win, s.win[1:])
			s.win = s.win[:len(s.win)-1]
		}
		s.win = append(s.win, b)
		if bytes.Equal(s.win, s.tag) {
			s.state, s.prev = pgSQL, '$'
		}
		return nil
	}
	switch {
	case b == '$':
		s.put(b)
		s.tag = append(s.tag, b)
		s.state, s.win = pgDollar, s.win[:0]
		s.addStmt(s.tag)
		return nil
	case isIdentByte(b) && !(len(s.tag) == 1 && b >= '0' && b <= '9') && len(s.tag) < 64:
		s.put(b)
		s.tag = append(s.tag, b)
		return nil
	}
	// Not a dollar quote ($1 is a parameter): plain SQL after all.
	s.addStmt(s.tag)
	s.state, s.prev = pgSQL, s.tag[len(s.tag)-1]
	return s.step(b)
}

// comment handles a byte of a -- or /* */ comment (these nest).
func (s *pgScript) comment(b byte) {
	s.put(b)
	switch {
	case s.state == pgLineComment:
		if b == '\n' {
			s.state, s.line = pgSQL, 0
		}
	case s.state == pgBlockStar && b == '/':
		if s.depth--; s.depth == 0 {
			s.state = pgSQL
			return
		}
		s.state = pgBlockComment
	case s.state == pgBlockSlash && b == '*':
		s.depth++
		s.state = pgBlockComment
	case b == '*':
		s.state = pgBlockStar
	case b == '/':
		s.state = pgBlockSlash
	default:
		s.state = pgBlockComment
	}
}

// metaByte reads a psql meta-command line, bounded, and checks it at its end.
func (s *pgScript) metaByte(b byte) error {
	if b != '\n' {
		if len(s.meta) >= metaKeep {
			return fmt.Errorf("the script has a psql command longer than %d bytes (%q...): %w", metaKeep, truncate(string(s.meta), 40), ErrNotPgDump)
		}
		s.meta = append(s.meta, b)
		return nil
	}
	if err := s.endMeta(); err != nil {
		return err
	}
	s.state, s.line = pgSQL, 0
	return nil
}

// sqlState handles a byte of SQL outside quotes and comments.
func (s *pgScript) sqlState(b byte) error {
	switch {
	case b == '\\':
		// psql reads a backslash outside quotes as a meta-command, to the end of the line.
		if s.line > 0 {
			return fmt.Errorf("the script has a psql command in the middle of a line, which pg_dump never writes: %w", ErrNotPgDump)
		}
		s.state, s.meta = pgMeta, append(s.meta[:0], b)
		return nil
	case b == '-':
		s.state = pgDash
		return nil
	case b == '/':
		s.state = pgSlash
		return nil
	case b == '\'':
		s.eString = s.prev == 'E' || s.prev == 'e'
		s.sqlByte(b)
		s.state = pgQuote
		return nil
	case b == '"':
		s.sqlByte(b)
		s.state = pgIdent
		return nil
	case b == '$' && !isIdentByte(s.prev):
		s.startStmt(b)
		s.put(b)
		s.tag = append(s.tag[:0], b)
		s.state = pgDollarTag
		s.line++
		return nil
	case b == ';':
		s.line++
		return s.endStatement()
	}
	s.sqlByte(b)
	return nil
}

// sqlByte records a byte of the current statement and passes it on.
func (s *pgScript) sqlByte(b byte) {
	space := b == ' ' || b == '\t' || b == '\n' || b == '\r'
	if b == '\n' {
		s.line = 0
	} else if !space {
		s.line++
	}
	if space && len(s.stmt) == 0 && !s.holding {
		s.put(b)
		s.prev = b
		return
	}
	s.startStmt(b)
	s.put(b)
	s.addStmt([]byte{b})
	s.prev = b
}

// startStmt begins holding a statement whose first byte may start BEGIN or COMMIT.
func (s *pgScript) startStmt(b byte) {
	if len(s.stmt) == 0 && !s.holding && (b == 'B' || b == 'b' || b == 'C' || b == 'c') {
		s.holding, s.held = true, s.held[:0]
	}
}

func (s *pgScript) addStmt(b []byte) {
	if room := stmtKeep - len(s.stmt); room > 0 {
		s.stmt = append(s.stmt, b[:min(len(b), room)]...)
	}
	if s.holding {
		word := strings.ToUpper(strings.TrimRight(string(s.stmt), " \t\r\n"))
		keep := !strings.ContainsAny(word, " \t\r\n") && (strings.HasPrefix("BEGIN", word) || strings.HasPrefix("COMMIT", word))
		if s.cluster != nil && len(s.held) < maxHeld {
			norm := spaces.ReplaceAllString(word, " ")
			for _, held := range []string{"CREATE DATABASE ", "CREATE TABLESPACE "} {
				keep = keep || strings.HasPrefix(held, norm) || strings.HasPrefix(norm, held)
			}
		}
		if !keep {
			// Not BEGIN or COMMIT alone: let the statement through.
			s.holding = false
			s.buf = append(s.buf, s.held...)
			s.held = s.held[:0]
		}
	}
}

var (
	copyFromStdin = regexp.MustCompile(`(?is)^COPY\s+(.+?)\s*(\(.*\))?\s+FROM\s+STDIN\s*;$`)
	spaces        = regexp.MustCompile(`\s+`)
)

// endStatement classifies the statement the ';' just ended.
func (s *pgScript) endStatement() error {
	raw := strings.TrimSpace(spaces.ReplaceAllString(string(s.stmt), " "))
	text := strings.ToUpper(raw)
	s.stmt, s.prev = s.stmt[:0], ';'
	if s.holding {
		s.holding = false
		if s.cluster != nil && strings.HasPrefix(text, "CREATE DATABASE ") {
			stmt := string(s.held) + ";"
			s.held = s.held[:0]
			return s.cluster.createDatabase(stmt)
		}
		if s.cluster != nil && strings.HasPrefix(text, "CREATE TABLESPACE ") {
			stmt := string(s.held) + ";"
			s.held = s.held[:0]
			return s.cluster.createTablespace(stmt)
		}
		if text == "BEGIN" || text == "COMMIT" {
			// pg_dump's own transaction around large objects: the restore's own
			// transaction must be the only one. The statement is left out.
			s.held = s.held[:0]
			return nil
		}
		s.buf = append(s.buf, s.held...)
		s.held = s.held[:0]
	}
	s.buf = append(s.buf, ';')
	word, _, _ := strings.Cut(text, " ")
	switch word {
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "START", "PREPARE":
		if word != "START" && word != "PREPARE" || strings.Contains(text, "TRANSACTION") {
			return fmt.Errorf("the script runs %q, which pg_dump never writes: %w", truncate(text, 60), ErrNotPgDump)
		}
	}
	if word == "COPY" {
		m := copyFromStdin.FindStringSubmatch(raw + ";")
		if m == nil {
			return fmt.Errorf("the script runs %q, but pg_dump only ever copies FROM stdin (COPY can run programs on the server): %w", truncate(raw, 80), ErrNotPgDump)
		}
		s.copyTable = m[1]
		if s.cluster != nil {
			s.copyTable = s.db + "/" + m[1]
		}
		if _, seen := s.rows[s.copyTable]; !seen {
			s.tables = append(s.tables, s.copyTable)
			s.rows[s.copyTable] = 0
		}
		s.state = pgCopyPending
	}
	return nil
}

// endMeta checks a meta-command line: only pg_dump's \restrict and \unrestrict pass.
func (s *pgScript) endMeta() error {
	line := strings.TrimSpace(string(s.meta))
	s.meta = s.meta[:0]
	cmd, _, _ := strings.Cut(line, " ")
	switch cmd {
	case `\connect`:
		if s.cluster == nil {
			break
		}
		if len(s.stmt) > 0 || s.holding {
			return fmt.Errorf("the script has \\connect inside a statement: %w", ErrNotPgDump)
		}
		db, ok := parseConnect(line)
		if !ok {
			return fmt.Errorf("the script runs %q, which is not how a cluster dump starts a database's section: %w", truncate(line, 80), ErrNotPgDump)
		}
		// What came before belongs to the previous section.
		if s.out != nil && len(s.buf) > 0 {
			if _, err := s.out.Write(s.buf); err != nil {
				return err
			}
		}
		s.buf = s.buf[:0]
		out, err := s.cluster.connect(db)
		if err != nil {
			return err
		}
		s.out, s.db = out, db
		return nil
	case `\restrict`, `\unrestrict`:
		if len(s.stmt) > 0 || s.holding {
			return fmt.Errorf("the script has %s inside a statement: %w", cmd, ErrNotPgDump)
		}
		s.buf = append(s.buf, line...)
		s.buf = append(s.buf, '\n')
		return nil
	}
	return fmt.Errorf("the script runs the psql command %q, which pg_dump never writes (psql commands can run programs in the database container): %w", truncate(line, 60), ErrNotPgDump)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Close reports a script that ended inside COPY data, a quote, a comment or a statement:
// pg_dump's scripts end after a complete statement.
func (s *pgScript) Close() error {
	switch s.state {
	case pgCopy, pgCopyPending:
		return fmt.Errorf("the script ends inside the COPY data of %s: %w", s.copyTable, ErrNotPgDump)
	case pgQuote, pgQuoteEnd, pgEscape, pgIdent, pgDollarTag, pgDollar, pgBlockComment, pgBlockStar, pgBlockSlash:
		if s.state == pgQuoteEnd {
			break
		}
		return fmt.Errorf("the script ends inside a quoted string or a comment: %w", ErrNotPgDump)
	case pgMeta:
		if err := s.endMeta(); err != nil {
			return err
		}
	}
	if strings.TrimSpace(string(s.stmt)) != "" {
		return fmt.Errorf("the script ends inside a statement (%q): %w", truncate(strings.TrimSpace(string(s.stmt)), 40), ErrNotPgDump)
	}
	return nil
}

// Rows returns the rows each table's COPY block held, tables in the order they appeared.
func (s *pgScript) Rows() ([]string, map[string]int64) { return s.tables, s.rows }

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
