package schedule

import (
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	cases := map[string]string{
		"0 2 * * *":                       "daily at 02:00",
		"* * * * *":                       "every minute",
		"@daily":                          "daily at 00:00",
		"@hourly":                         "every hour at minute 0",
		"15 * * * *":                      "every hour at minute 15",
		"30 */6 * * *":                    "every 6 hours at minute 30",
		"*/10 * * * *":                    "every 10 minutes",
		"5 4 * * 0":                       "weekly on Sunday at 04:05",
		"5 4 * * sun":                     "weekly on Sunday at 04:05",
		"0 22 * * 1-5":                    "weekly on Monday to Friday at 22:00",
		"0 3 * * 1,3,5":                   "weekly on Monday, Wednesday, Friday at 03:00",
		"0 3 1 * *":                       "monthly on day 1 at 03:00",
		"@weekly":                         "weekly on Sunday at 00:00",
		"@monthly":                        "monthly on day 1 at 00:00",
		"0 0 25 12 *":                     "yearly on December 25 at 00:00",
		"@every 1h30m":                    "every 1h30m",
		"CRON_TZ=Europe/Berlin 0 2 * * *": "daily at 02:00 (Europe/Berlin)",
		"0 2 1-7 * 1":                     "cron 0 2 1-7 * 1",
	}
	for spec, want := range cases {
		s, err := Parse(spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", spec, err)
			continue
		}
		if got := s.Describe(); got != want {
			t.Errorf("Describe(%q) = %q, want %q", spec, got, want)
		}
	}
	for _, bad := range []string{"0 25 * * *", "every day", "", "* * * *", "CRON_TZ=Nowhere/City 0 2 * * *"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestNextAndInterval(t *testing.T) {
	from := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	for spec, want := range map[string]struct {
		next     time.Time
		interval time.Duration
	}{
		"0 2 * * *":    {time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), 24 * time.Hour},
		"@hourly":      {time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), time.Hour},
		"0 3 * * 1-5":  {time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), 72 * time.Hour}, // Friday to Monday
		"0 0 1 * *":    {time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 31 * 24 * time.Hour},
		"@every 1h30m": {from.Add(90 * time.Minute), 90 * time.Minute},
	} {
		s, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(from); !got.Equal(want.next) {
			t.Errorf("%s: Next = %v, want %v", spec, got, want.next)
		}
		if got := s.Interval(from); got != want.interval {
			t.Errorf("%s: Interval = %v, want %v", spec, got, want.interval)
		}
	}
}
