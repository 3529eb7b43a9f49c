package postgres

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestConnectLineRoundTrip(t *testing.T) {
	for _, db := range []string{"app", "host=evil port=1", `it's "quoted" \ odd`, "Ünïcode db"} {
		line := formatConnect(db)
		got, ok := parseConnect(line)
		if !ok || got != db {
			t.Errorf("%q: %s read back as %q, %v", db, line, got, ok)
		}
	}
	for _, bad := range []string{`\connect app`, `\connect -reuse-previous=on "dbname='a' host='evil'"`, `\connect -reuse-previous=on "dbname='a'" x`} {
		if db, ok := parseConnect(bad); ok {
			t.Errorf("%s was read as database %q", bad, db)
		}
	}
}

func TestWriteRoles(t *testing.T) {
	dump := "--\n-- Roles\n--\n\nCREATE ROLE app;\nALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';\nCREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN;\nCREATE ROLE \"Odd Role\";\nGRANT app TO \"Odd Role\" GRANTED BY postgres;\n"
	var out bytes.Buffer
	if err := writeRoles(&out, []byte(dump), "postgres"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"DO $docker_backup$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN NULL; END $docker_backup$;",
		"ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';",
		`DO $docker_backup$ BEGIN CREATE ROLE "Odd Role"; EXCEPTION`,
		`GRANT app TO "Odd Role" GRANTED BY postgres;`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("roles lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "CREATE ROLE postgres") || strings.Contains(got, "ALTER ROLE postgres WITH") {
		t.Errorf("the server's own superuser is touched:\n%s", got)
	}
	// The result is a script the restore accepts.
	s := newPGScript(nil)
	if _, err := s.Write(out.Bytes()); err != nil || s.Close() != nil {
		t.Errorf("the roles are refused: %v", err)
	}
}

func TestPGScriptCluster(t *testing.T) {
	dump := "SET x = 1;\nDO $docker_backup$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object THEN NULL; END $docker_backup$;\n" +
		"CREATE TABLESPACE ts OWNER app LOCATION '/tmp/ts';\n" +
		"CREATE DATABASE app WITH TEMPLATE = template0 OWNER = app;\n" + formatConnect("app") + "\n" +
		"CREATE TABLE public.t (a int);\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\n" +
		"CREATE DATABASE \"b\" WITH TEMPLATE = template0\n  OWNER = app;\n" + formatConnect("b") + "\n" +
		"COPY public.t (a) FROM stdin;\n3\n\\.\nSELECT 1;\n"
	for _, chunk := range []int{1, 7, 4096} {
		var globals bytes.Buffer
		sections := map[string]*bytes.Buffer{}
		var creates, spaces []string
		s := newPGScript(&globals)
		s.cluster = &clusterHooks{
			connect: func(db string) (io.Writer, error) {
				sections[db] = &bytes.Buffer{}
				return sections[db], nil
			},
			createDatabase:   func(stmt string) error { creates = append(creates, stmt); return nil },
			createTablespace: func(stmt string) error { spaces = append(spaces, stmt); return nil },
		}
		for i := 0; i < len(dump); i += chunk {
			if _, err := s.Write([]byte(dump[i:min(i+chunk, len(dump))])); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(globals.String(), "CREATE DATABASE") || !strings.Contains(globals.String(), "CREATE ROLE app") {
			t.Errorf("chunk %d: globals %q", chunk, globals.String())
		}
		if len(spaces) != 1 || spaces[0] != "CREATE TABLESPACE ts OWNER app LOCATION '/tmp/ts';" || strings.Contains(globals.String(), "TABLESPACE") {
			t.Errorf("chunk %d: tablespaces %q", chunk, spaces)
		}
		if len(creates) != 2 || creates[0] != "CREATE DATABASE app WITH TEMPLATE = template0 OWNER = app;" || !strings.HasPrefix(creates[1], `CREATE DATABASE "b"`) {
			t.Errorf("chunk %d: creates %q", chunk, creates)
		}
		if a, b := sections["app"].String(), sections["b"].String(); !strings.Contains(a, "1\n2\n") || strings.Contains(a, "3\n") || !strings.Contains(b, "3\n") || strings.Contains(b, "CREATE DATABASE") || strings.Contains(a+b, `\connect`) {
			t.Errorf("chunk %d: sections %q / %q", chunk, a, b)
		}
		if _, rows := s.Rows(); rows["app/public.t"] != 2 || rows["b/public.t"] != 1 {
			t.Errorf("chunk %d: rows %v", chunk, rows)
		}
	}
	// Outside a cluster dump, \connect is a psql command like any other: refused.
	s := newPGScript(nil)
	if _, err := s.Write([]byte(formatConnect("app") + "\n")); !errors.Is(err, ErrNotPgDump) {
		t.Errorf("\\connect in a database dump: %v", err)
	}
	// In one, only the form it writes passes.
	s = newPGScript(nil)
	s.cluster = checkOnly()
	if _, err := s.Write([]byte("\\connect app\n")); !errors.Is(err, ErrNotPgDump) {
		t.Errorf("a bare \\connect: %v", err)
	}
}
