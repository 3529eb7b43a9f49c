package strategy

import (
	"reflect"
	"strings"
	"testing"
)

func TestCleanPaths(t *testing.T) {
	got, err := cleanPaths([]string{"/data/sub", "/data", " /config/ ", "/data-x", "/data//y/..", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/config", "/data", "/data-x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cleanPaths = %v, want %v", got, want)
	}
	for _, bad := range []string{"data", "./x", "/", "/.."} {
		if _, err := cleanPaths([]string{bad}); err == nil {
			t.Errorf("cleanPaths(%q) accepted", bad)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := New("oracle", Options{}); err == nil || !strings.Contains(err.Error(), "mongo, mysql, postgres, redis, sqlite, volume") {
		t.Errorf("New(oracle) = %v", err)
	}
	s, err := New("postgres", Options{User: "u"})
	if err != nil || s.Name() != "postgres" || s.Extension() != "sql" {
		t.Errorf("New(postgres) = %v, %v", s, err)
	}
	if _, err := New("volume", Options{Paths: []string{"rel"}}); err == nil {
		t.Error("relative volume path accepted")
	}
}

func TestPostgresVersions(t *testing.T) {
	if v := toolVersion("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"); v != "15.18" {
		t.Errorf("toolVersion = %q", v)
	}
	if v := toolVersion("pg_dump (PostgreSQL) 17.2"); v != "17.2" {
		t.Errorf("toolVersion = %q", v)
	}
	if MajorVersion("15.18") != "15" || MajorVersion("9.6.24") != "9" || MajorVersion("17beta1") != "17" {
		t.Error("MajorVersion")
	}
}

func TestIsLocalName(t *testing.T) {
	for name, want := range map[string]bool{"data/x": true, "data/": true, "../x": false, "/abs": false, "a/../b": false, "a//b": false, "": false} {
		if got := isLocalName(name); got != want {
			t.Errorf("isLocalName(%q) = %v", name, got)
		}
	}
}
