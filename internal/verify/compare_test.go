package verify

import (
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

func failed(checks []Check) []string {
	var out []string
	for _, c := range checks {
		if !c.Passed {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestCompareTables(t *testing.T) {
	want := &artifact.Contents{Tables: map[string]int64{"public.a": 10, "public.b": 0, "public.c": 3}}
	same := &artifact.Contents{Tables: map[string]int64{"public.a": 10, "public.b": 0, "public.c": 3}}
	if f := failed(Compare("postgres", want, same)); len(f) != 0 {
		t.Fatalf("identical tables fail: %v", f)
	}
	cut := &artifact.Contents{Tables: map[string]int64{"public.a": 10, "public.b": 0, "public.c": 0}}
	if f := failed(Compare("postgres", want, cut)); len(f) != 1 || f[0] != "rows public.c" {
		t.Fatalf("a table missing rows: failed %v", f)
	}
	missing := &artifact.Contents{Tables: map[string]int64{"public.a": 10, "public.b": 0}}
	if f := failed(Compare("mysql", want, missing)); len(f) != 2 || f[0] != "tables" {
		t.Fatalf("a missing table: failed %v", f)
	}
	extra := &artifact.Contents{Tables: map[string]int64{"public.a": 10, "public.b": 0, "public.c": 3, "public.d": 1}}
	if f := failed(Compare("sqlite", want, extra)); len(f) != 2 {
		t.Fatalf("an extra table: failed %v", f)
	}
	// Nothing recorded: only the restore and integrity are checked, and say so.
	checks := Compare("sqlite", nil, &artifact.Contents{Tables: map[string]int64{"x": 1}, Integrity: "ok"})
	if f := failed(checks); len(f) != 0 || checks[0].Expected != "not recorded" {
		t.Fatalf("unrecorded: %+v", checks)
	}
	if f := failed(Compare("sqlite", nil, &artifact.Contents{Integrity: "*** in database main ***\nPage 3 is never used"})); len(f) != 1 || f[0] != "integrity_check" {
		t.Fatalf("a damaged database: failed %v", f)
	}
}

func TestCompareKeys(t *testing.T) {
	want := &artifact.Contents{Keys: map[string]int64{"db0": 100, "db1": 2}, Expiring: map[string]int64{"db0": 5}}
	for _, tc := range []struct {
		found  map[string]int64
		failed int
	}{
		{map[string]int64{"db0": 100, "db1": 2}, 0},
		{map[string]int64{"db0": 97, "db1": 2}, 0}, // three keys with a TTL expired
		{map[string]int64{"db0": 94, "db1": 2}, 1}, // more missing than had a TTL
		{map[string]int64{"db0": 101, "db1": 2}, 1},
		{map[string]int64{"db0": 100}, 1},
		{map[string]int64{"db0": 100, "db1": 2, "db5": 1}, 1},
	} {
		if f := failed(Compare("redis", want, &artifact.Contents{Keys: tc.found})); len(f) != tc.failed {
			t.Errorf("found %v: failed %v, want %d failures", tc.found, f, tc.failed)
		}
	}
}

func TestCompareTree(t *testing.T) {
	want := &artifact.Contents{Files: 3, Bytes: 10, Tree: "sha256:aa"}
	if f := failed(Compare("volume", want, &artifact.Contents{Files: 3, Bytes: 10, Tree: "sha256:aa"})); len(f) != 0 {
		t.Fatalf("same tree fails: %v", f)
	}
	if f := failed(Compare("volume", want, &artifact.Contents{Files: 3, Bytes: 10, Tree: "sha256:bb"})); len(f) != 1 || f[0] != "tree digest" {
		t.Fatalf("another tree: failed %v", f)
	}
}

func TestReportFailed(t *testing.T) {
	r := &Report{Backup: "k", Service: "p/s", Checks: []Check{{Name: "restore", Passed: true}, {Name: "rows x", Expected: "3", Found: "0"}}}
	if err := r.Failed(); err == nil || err.Error() != "verify failed: k of p/s: rows x: expected 3, found 0" {
		t.Fatalf("Failed() = %v", err)
	}
	r.Passed = true
	if r.Failed() != nil {
		t.Fatal("a passed report failed")
	}
}
