package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the test needs a zone whatever the machine has
)

func TestParse(t *testing.T) {
	good := map[string]Policy{
		"7":   {Last: 7},
		" 1 ": {Last: 1},
		"keep-daily=7,keep-weekly=4,keep-monthly=6": {Daily: 7, Weekly: 4, Monthly: 6},
		"keep-last=3, keep-yearly=2":                {Last: 3, Yearly: 2},
		"keep-daily=0,keep-weekly=1":                {Weekly: 1},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		again, err := Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(String(%+v)) = %+v, %v", got, again, err)
		}
	}
	bad := map[string]string{
		"":                          "empty",
		"0":                         `retention "0"`,
		"-1":                        `retention "-1"`,
		"seven":                     `"seven" is not rule=number`,
		"keep-daily=-1":             `keep-daily="-1" must be a whole number`,
		"keep-dayly=7":              `unknown rule "keep-dayly"`,
		"keep-daily=7,keep-daily=3": "given twice",
		"keep-daily=0":              "keeps nothing",
		"keep-daily=x":              `keep-daily="x"`,
	}
	for in, want := range bad {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
}

// timeline makes one backup every step from start, count of them.
func timeline(start time.Time, step time.Duration, count int) []Backup {
	var bs []Backup
	for i := 0; i < count; i++ {
		at := start.Add(time.Duration(i) * step)
		bs = append(bs, Backup{Key: at.Format(time.RFC3339), Created: at})
	}
	return bs
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Key)
		}
	}
	return out
}

func TestKeepLast(t *testing.T) {
	bs := timeline(time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC), time.Hour, 20)
	ds := Apply(Policy{Last: 7}, bs, Clock{Location: time.UTC})
	k := kept(ds)
	if len(k) != 7 || k[0] != bs[19].Key || k[6] != bs[13].Key {
		t.Errorf("kept %v", k)
	}
	if len(Apply(Policy{Last: 50}, bs, Clock{Location: time.UTC})) != 20 || len(kept(Apply(Policy{Last: 50}, bs, Clock{Location: time.UTC}))) != 20 {
		t.Error("keep-last larger than the list must keep everything")
	}
}

func TestGFSOverAYearOfDailyBackups(t *testing.T) {
	// Every day at 02:00 from 2025-01-01 to 2026-03-31 (455 days), plus an hourly burst
	// on the last day.
	bs := timeline(time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC), 24*time.Hour, 455)
	bs = append(bs, timeline(time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC), time.Hour, 5)...)
	ds := Apply(Policy{Daily: 7, Weekly: 4, Monthly: 6, Yearly: 2}, bs, Clock{Location: time.UTC})
	k := map[string]bool{}
	for _, key := range kept(ds) {
		k[key] = true
	}
	want := []string{
		"2026-03-31T14:00:00Z", // newest: daily for 03-31, weekly W14, monthly 03, yearly 2026
		"2026-03-30T02:00:00Z", "2026-03-29T02:00:00Z", "2026-03-28T02:00:00Z", "2026-03-27T02:00:00Z",
		"2026-03-26T02:00:00Z", "2026-03-25T02:00:00Z", // the other six days
		// Weekly: W14 and W13 are covered by the newest and by Sunday 03-29 (a daily);
		// then the Sundays ending W12 and W11.
		"2026-03-22T02:00:00Z", "2026-03-15T02:00:00Z",
		"2026-02-28T02:00:00Z", "2026-01-31T02:00:00Z", "2025-12-31T02:00:00Z", "2025-11-30T02:00:00Z",
		"2025-10-31T02:00:00Z", // last day of each earlier month
	}
	for _, w := range want {
		if !k[w] {
			t.Errorf("%s was not kept", w)
		}
	}
	if len(k) != len(want) {
		var extra []string
		for key := range k {
			extra = append(extra, key)
		}
		t.Errorf("kept %d backups, want %d: %v", len(k), len(want), extra)
	}
	// Reasons name the rules.
	if r := strings.Join(ds[0].Reasons, ","); !strings.Contains(r, "newest") || !strings.Contains(r, "daily 2026-03-31") || !strings.Contains(r, "yearly 2026") {
		t.Errorf("reasons of the newest: %s", r)
	}
}

func TestNewestIsAlwaysKept(t *testing.T) {
	// Even a policy that only keeps yearly backups keeps the newest, and unsorted input is fine.
	bs := []Backup{
		{Key: "old", Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)},
		{Key: "new", Created: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{Key: "mid", Created: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)},
	}
	ds := Apply(Policy{Yearly: 1}, bs, Clock{Location: time.UTC})
	if ds[0].Key != "new" || !ds[0].Keep || ds[1].Keep || ds[2].Keep {
		t.Errorf("decisions: %+v", ds)
	}
	if got := Apply(Policy{Last: 1}, nil, Clock{Location: time.UTC}); len(got) != 0 {
		t.Errorf("empty input: %v", got)
	}
}

func TestDaysFollowTheTimeZone(t *testing.T) {
	// 23:30 and 00:30 UTC are the same day in New York, different days in UTC.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	bs := []Backup{
		{Key: "a", Created: time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC)},
		{Key: "b", Created: time.Date(2026, 6, 2, 0, 30, 0, 0, time.UTC)},
	}
	if n := len(kept(Apply(Policy{Daily: 2}, bs, Clock{Location: time.UTC}))); n != 2 {
		t.Errorf("UTC: kept %d, want 2", n)
	}
	if k := kept(Apply(Policy{Daily: 2}, bs, Clock{Location: ny})); len(k) != 1 || k[0] != "b" {
		t.Errorf("New York: kept %v, want [b]", k)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"7", "keep-daily=7,keep-weekly=4", "keep-last=0,keep-yearly=1", "", "-3", "a=b,c", "keep-daily==1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !strings.Contains(err.Error(), "retention") {
				t.Errorf("error %q does not say it is about retention", err)
			}
			return
		}
		if p == (Policy{}) || p.Last < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 || p.Yearly < 0 {
			t.Errorf("Parse(%q) accepted %+v", s, p)
		}
		if again, err := Parse(p.String()); err != nil || again != p {
			t.Errorf("round trip of %q: %+v, %v", s, again, err)
		}
		_ = fmt.Sprint(p)
	})
}

// Retention survives clocks: a backup dated in the future is never counted as the newest nor
// deleted, and the backup just written is kept even when a clock that went back dates it
// before older ones.
func TestApplyWithWrongClocks(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	bs := []Backup{
		{Key: "forged", Created: now.Add(30 * day)},
		{Key: "ahead", Created: now.Add(2 * time.Hour)},
		{Key: "d1", Created: now.Add(-1 * day)},
		{Key: "d2", Created: now.Add(-2 * day)},
		{Key: "d3", Created: now.Add(-3 * day)},
	}
	ds := Apply(Policy{Last: 2}, bs, Clock{Location: time.UTC, Future: now.Add(5 * time.Minute)})
	if got := strings.Join(kept(ds), ","); got != "forged,ahead,d1,d2" {
		t.Errorf("kept %s, want the future-dated ones (not counted) and the 2 newest real ones", got)
	}
	// The clock jumped back a week: the new backup is dated before every other one.
	bs = append(bs[2:], Backup{Key: "new", Created: now.Add(-7 * day)})
	ds = Apply(Policy{Last: 1}, bs, Clock{Location: time.UTC, Future: now.Add(-7*day + 5*time.Minute), Keep: "new"})
	if got := strings.Join(kept(ds), ","); got != "d1,d2,d3,new" {
		t.Errorf("after the clock went back: kept %s, want everything (the old ones look future, the new one was just written)", got)
	}
	for _, d := range ds {
		if d.Key == "new" && !strings.Contains(strings.Join(d.Reasons, ","), "just written") {
			t.Errorf("the new backup is kept for %v, want \"just written\"", d.Reasons)
		}
	}
	// Only future-dated backups: nothing is deleted.
	if ds := Apply(Policy{Last: 1}, bs[:1], Clock{Future: now.Add(-30 * day)}); len(kept(ds)) != 1 {
		t.Errorf("a lone future-dated backup: %+v", ds)
	}
}
