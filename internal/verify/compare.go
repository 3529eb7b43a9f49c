package verify

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// Compare compares what a backup recorded (want, nil when it recorded nothing) with what its
// restore holds (found), check by check.
func Compare(strategyName string, want, found *artifact.Contents) []Check {
	if found == nil {
		found = &artifact.Contents{}
	}
	none := want == nil
	if none {
		want = &artifact.Contents{}
	}
	var checks []Check
	switch strategyName {
	case "postgres", "mysql", "sqlite":
		checks = append(checks, counts("tables", "rows", want.Tables, found.Tables, none || want.Tables == nil, want.Truncated)...)
	case "mongo":
		checks = append(checks, counts("collections", "documents", want.Collections, found.Collections, none || want.Collections == nil, want.Truncated)...)
	case "redis":
		checks = append(checks, keys(want, found, none)...)
	case "volume":
		if none {
			checks = append(checks, Check{Name: "files", Expected: "not recorded", Found: strconv.FormatInt(found.Files, 10), Passed: true})
			break
		}
		checks = append(checks,
			equal("files", strconv.FormatInt(want.Files, 10), strconv.FormatInt(found.Files, 10)),
			equal("bytes", strconv.FormatInt(want.Bytes, 10), strconv.FormatInt(found.Bytes, 10)),
			equal("tree digest", want.Tree, found.Tree))
	}
	if found.Integrity != "" {
		checks = append(checks, equal("integrity_check", "ok", found.Integrity))
	}
	return checks
}

func equal(name, want, found string) Check {
	return Check{Name: name, Expected: want, Found: found, Passed: want == found}
}

// counts compares counts per name (rows per table, documents per collection): the same
// names, and the same count for each.
func counts(what, unit string, want, found map[string]int64, unrecorded, truncated bool) []Check {
	total := func(m map[string]int64) int64 {
		var n int64
		for _, v := range m {
			n += v
		}
		return n
	}
	if unrecorded {
		return []Check{{Name: what, Expected: "not recorded", Found: fmt.Sprintf("%d, %d %s", len(found), total(found), unit), Passed: true,
			Note: "the backup did not record its " + what + ": only the restore is checked"}}
	}
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	if !truncated {
		for n := range found {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	foundNames := 0
	for n := range names {
		if _, ok := found[n]; ok {
			foundNames++
		}
	}
	summary := Check{Name: what, Expected: strconv.Itoa(len(want)), Found: strconv.Itoa(foundNames), Passed: len(want) == foundNames && len(names) == len(want)}
	if truncated {
		summary.Note = fmt.Sprintf("the backup listed only the first %d %s", artifact.MaxCounted, what)
		summary.Passed = foundNames == len(want)
	}
	checks := []Check{summary}
	for _, n := range sorted {
		w, inWant := want[n]
		f, inFound := found[n]
		c := Check{Name: unit + " " + n, Expected: strconv.FormatInt(w, 10), Found: strconv.FormatInt(f, 10), Passed: inWant && inFound && w == f}
		if !inWant {
			c.Expected, c.Note = "absent", "not in the backup"
		}
		if !inFound {
			c.Found = "absent"
		}
		checks = append(checks, c)
	}
	return checks
}

// keys compares Redis keys per database: a key with a time to live may have expired between
// the backup and the restore, so fewer keys pass by up to the number that had one.
func keys(want, found *artifact.Contents, unrecorded bool) []Check {
	if unrecorded || want.Keys == nil {
		var n int64
		for _, v := range found.Keys {
			n += v
		}
		return []Check{{Name: "keys", Expected: "not recorded", Found: strconv.FormatInt(n, 10), Passed: true,
			Note: "the backup did not record its keys: only the restore is checked"}}
	}
	dbs := map[string]bool{}
	for db := range want.Keys {
		dbs[db] = true
	}
	for db, n := range found.Keys {
		if n > 0 {
			dbs[db] = true
		}
	}
	sorted := make([]string, 0, len(dbs))
	for db := range dbs {
		sorted = append(sorted, db)
	}
	sort.Strings(sorted)
	var checks []Check
	for _, db := range sorted {
		w, f, exp := want.Keys[db], found.Keys[db], want.Expiring[db]
		c := Check{Name: "keys " + db, Expected: strconv.FormatInt(w, 10), Found: strconv.FormatInt(f, 10), Passed: f == w}
		if !c.Passed && exp > 0 && f < w && f >= w-exp {
			c.Passed = true
			c.Note = fmt.Sprintf("%d of the %d keys had a time to live and expired since the backup", w-f, exp)
		}
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		checks = append(checks, Check{Name: "keys", Expected: "0", Found: "0", Passed: true})
	}
	return checks
}
