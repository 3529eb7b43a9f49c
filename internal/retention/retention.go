// Package retention decides which backups to keep: the newest N, and/or the newest backup of
// each of the last D days, W weeks, M months and Y years (grandfather-father-son). It is pure
// logic over a list of backups; the caller lists them from the target and deletes.
package retention

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Policy says what to keep. A backup is kept when any rule keeps it; the newest backup is
// always kept.
type Policy struct {
	Last    int // the newest N backups
	Daily   int // the newest backup of each of the N most recent days that have one
	Weekly  int // ... ISO weeks
	Monthly int // ... months
	Yearly  int // ... years
}

const policyHelp = `a positive number of backups to keep (e.g. 7), or rules like keep-last=3,keep-daily=7,keep-weekly=4,keep-monthly=6,keep-yearly=2`

// Parse reads a policy as a label gives it: "7", or "keep-daily=7,keep-weekly=4,keep-monthly=6".
func Parse(s string) (Policy, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Policy{}, fmt.Errorf("retention is empty: use %s", policyHelp)
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 {
			return Policy{}, fmt.Errorf("retention %q: must be %s", s, policyHelp)
		}
		return Policy{Last: n}, nil
	}
	var p Policy
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return Policy{}, fmt.Errorf("retention %q: %q is not rule=number; use %s", s, part, policyHelp)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Policy{}, fmt.Errorf("retention %q: %s=%q must be a whole number, 0 or more", s, k, v)
		}
		if seen[k] {
			return Policy{}, fmt.Errorf("retention %q: %s is given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "keep-last":
			p.Last = n
		case "keep-daily":
			p.Daily = n
		case "keep-weekly":
			p.Weekly = n
		case "keep-monthly":
			p.Monthly = n
		case "keep-yearly":
			p.Yearly = n
		default:
			return Policy{}, fmt.Errorf("retention %q: unknown rule %q (known: keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly)", s, k)
		}
	}
	if p == (Policy{}) {
		return Policy{}, fmt.Errorf("retention %q keeps nothing: use %s", s, policyHelp)
	}
	return p, nil
}

// String writes the policy back in Parse's form.
func (p Policy) String() string {
	if p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 {
		return strconv.Itoa(p.Last)
	}
	var parts []string
	for _, r := range []struct {
		name string
		n    int
	}{{"keep-last", p.Last}, {"keep-daily", p.Daily}, {"keep-weekly", p.Weekly}, {"keep-monthly", p.Monthly}, {"keep-yearly", p.Yearly}} {
		if r.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r.name, r.n))
		}
	}
	return strings.Join(parts, ",")
}

// Backup is one successful backup on the target.
type Backup struct {
	Key     string
	Created time.Time
}

// Decision says whether to keep a backup and why.
type Decision struct {
	Backup
	Keep    bool
	Reasons []string // the rules that keep it ("last 3", "daily 2026-11-25", "newest"); empty when deleted
}

// Clock is what Apply needs to know of the time.
type Clock struct {
	// Location is where calendar days, weeks, months and years begin.
	Location *time.Location
	// Future is the latest creation time that is believable: a backup dated after it (a
	// clock ahead, a forged manifest) is neither counted by the rules nor ever deleted.
	Future time.Time
	// Keep is the key of the backup just written: it is always kept, even when a clock that
	// went back dates it before backups it follows.
	Keep string
}

// Apply decides for every backup, newest first. Periods are calendar days, ISO weeks,
// months and years in the clock's location.
func Apply(p Policy, backups []Backup, clock Clock) []Decision {
	loc := clock.Location
	if loc == nil {
		loc = time.Local
	}
	ds := make([]Decision, 0, len(backups))
	var future []Decision
	for _, b := range backups {
		d := Decision{Backup: b}
		if !clock.Future.IsZero() && b.Created.After(clock.Future) {
			d.Keep, d.Reasons = true, []string{"dated in the future (not counted)"}
			future = append(future, d)
			continue
		}
		ds = append(ds, d)
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Created.After(ds[j].Created) })
	keep := func(i int, why string) {
		ds[i].Keep = true
		ds[i].Reasons = append(ds[i].Reasons, why)
	}
	for i := range ds {
		if clock.Keep != "" && ds[i].Key == clock.Keep {
			keep(i, "just written")
		}
	}
	if len(ds) == 0 {
		return future
	}
	keep(0, "newest")
	for i := 0; i < len(ds) && i < p.Last; i++ {
		keep(i, fmt.Sprintf("last %d", p.Last))
	}
	buckets := []struct {
		name   string
		n      int
		period func(time.Time) string
	}{
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, b := range buckets {
		if b.n <= 0 {
			continue
		}
		seen := map[string]bool{}
		for i := range ds {
			period := b.period(ds[i].Created.In(loc))
			if seen[period] {
				continue
			}
			if len(seen) == b.n {
				break
			}
			seen[period] = true
			keep(i, b.name+" "+period) // the newest backup of that period
		}
	}
	return append(future, ds...)
}
