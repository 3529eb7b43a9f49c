package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// dumpWithLargeObjects is shaped like pg_dump's plain output: \restrict, SET lines, a
// function whose body holds what would end a statement or a transaction elsewhere, COPY
// blocks (one with rows that look like SQL and like the end marker), and the BEGIN/COMMIT
// that pg_dump writes around large objects.
const dumpWithLargeObjects = `--
-- PostgreSQL database dump
--

\restrict AbCdEf123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
DROP TABLE IF EXISTS public."Odd ""Name""";
CREATE FUNCTION public.f() RETURNS text
    LANGUAGE plpgsql
    AS $_$
BEGIN
  COMMIT;
  RETURN 'a;b' || $x$ \! not a command $x$;
END
$_$;
CREATE TABLE public."Odd ""Name""" (id integer, t text);
COMMENT ON TABLE public."Odd ""Name""" IS 'it''s
BEGIN;
multi-line; -- not a comment';
/* a block /* nested */ comment; COMMIT; */
COPY public."Odd ""Name""" (id, t) FROM stdin;
1	BEGIN;
2	\\.
3	COMMIT;
\.
COPY public.empty (x) FROM stdin;
\.
SELECT $1 FROM x WHERE y = E'it\'s \\ ok;';

--
-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
--

BEGIN;

SELECT pg_catalog.lo_open('16395', 131072);
SELECT pg_catalog.lowrite(0, '\x68656c6c6f');
SELECT pg_catalog.lo_close(0);

COMMIT;

\unrestrict AbCdEf123

`

func filterScript(t *testing.T, script string, chunk int) (string, *pgScript, error) {
	t.Helper()
	var out bytes.Buffer
	s := newPGScript(&out)
	b := []byte(script)
	for len(b) > 0 {
		n := min(len(b), chunk)
		if chunk <= 0 {
			n = min(len(b), 1+rand.IntN(40))
		}
		if _, err := s.Write(b[:n]); err != nil {
			return out.String(), s, err
		}
		b = b[n:]
	}
	return out.String(), s, s.Close()
}

func TestPGScriptDropsOnlyTopLevelTransactionControl(t *testing.T) {
	want := strings.Replace(strings.Replace(dumpWithLargeObjects, "\nBEGIN;\n\nSELECT pg_catalog.lo_open", "\n\n\nSELECT pg_catalog.lo_open", 1),
		"lo_close(0);\n\nCOMMIT;\n", "lo_close(0);\n\n\n", 1)
	for _, chunk := range []int{1 << 20, 1, 2, 3, 7, 0, 0, 0} {
		got, s, err := filterScript(t, dumpWithLargeObjects, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if got != want {
			t.Fatalf("chunk %d: output differs:\n%s", chunk, lineDiff(want, got))
		}
		tables, rows := s.Rows()
		if strings.Join(tables, ",") != `public."Odd ""Name""",public.empty` || rows[`public."Odd ""Name"""`] != 3 || rows["public.empty"] != 0 {
			t.Errorf("chunk %d: rows %v %v", chunk, tables, rows)
		}
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q", i+1, x, y)
		}
	}
	return "(same lines)"
}

func TestPGScriptRefusesWhatPgDumpNeverWrites(t *testing.T) {
	cases := map[string]string{
		"shell escape":             "SELECT 1;\n\\! touch /tmp/owned\n",
		"meta mid-line":            "SELECT 1; \\! id\n",
		"include file":             "\\i /etc/passwd\n",
		"connect":                  "\\connect other\n",
		"end":                      "CREATE TABLE a (x int);\nEND;\n",
		"rollback":                 "ROLLBACK;\n",
		"commit and chain":         "COMMIT AND CHAIN;\n",
		"start transaction":        "START TRANSACTION;\n",
		"copy from program":        "COPY t FROM PROGRAM 'id';\n",
		"copy to file":             "COPY t TO '/tmp/x';\n",
		"cut in copy data":         "COPY public.t (a) FROM stdin;\n1\n2\n",
		"cut in string":            "SELECT 'abc\n",
		"cut in statement":         "CREATE TABLE a (x int);\nDROP TABLE a",
		"cut in dollar quote":      "CREATE FUNCTION f() AS $$ body",
		"end marker outside copy":  "\\.\n",
		"lower-case copy programs": "copy t from program 'id';\n",
	}
	for name, script := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := filterScript(t, script, 3)
			if !errors.Is(err, ErrNotPgDump) {
				t.Errorf("accepted (%v):\n%s", err, script)
			}
		})
	}
	// Meta-commands never reach psql before they are checked.
	var out bytes.Buffer
	s := newPGScript(&out)
	s.Write([]byte("SELECT 1;\n\\! touch /tmp/owned\n"))
	if strings.Contains(out.String(), "touch") {
		t.Errorf("a refused command was passed on: %q", out.String())
	}
}

func TestPGScriptHoldsAStatementUntilItIsKnown(t *testing.T) {
	// A cut after "COMMIT" without its semicolon must not send COMMIT: psql runs an
	// unterminated statement at end of input.
	var out bytes.Buffer
	s := newPGScript(&out)
	s.Write([]byte("CREATE TABLE a (x int);\nCOMMIT"))
	if strings.Contains(out.String(), "COMMIT") {
		t.Errorf("an unfinished COMMIT was passed on: %q", out.String())
	}
	s.Write([]byte("TED_AT text;\n"))
	if !strings.Contains(out.String(), "COMMITTED_AT text;") {
		t.Errorf("a statement that only starts like COMMIT was held back: %q", out.String())
	}
}

// FuzzPGScript: whatever the script and however it is cut into writes, the reader never
// panics, passes the same bytes on and reaches the same verdict.
func FuzzPGScript(f *testing.F) {
	f.Add([]byte(dumpWithLargeObjects), uint8(7))
	f.Add([]byte("SELECT 'a;b' ; COPY t FROM stdin;\n1\n\\.\n"), uint8(1))
	f.Add([]byte("CREATE FUNCTION f() AS $x$ COMMIT; $x$;\nBEGIN;\n"), uint8(3))
	f.Fuzz(func(t *testing.T, script []byte, chunk uint8) {
		var whole, parts bytes.Buffer
		a := newPGScript(&whole)
		_, errA := a.Write(script)
		if errA == nil {
			errA = a.Close()
		}
		b := newPGScript(&parts)
		var errB error
		for rest := script; len(rest) > 0 && errB == nil; {
			n := min(len(rest), int(chunk)+1)
			_, errB = b.Write(rest[:n])
			rest = rest[n:]
		}
		if errB == nil {
			errB = b.Close()
		}
		if (errA == nil) != (errB == nil) {
			t.Fatalf("verdicts differ: whole %v, in parts %v", errA, errB)
		}
		if errA == nil && whole.String() != parts.String() {
			t.Fatalf("outputs differ:\n%q\n%q", whole.String(), parts.String())
		}
	})
}
