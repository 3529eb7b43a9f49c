// Package schedule reads cron schedules as the labels give them (5 fields, @daily-style
// descriptors, @every durations, a CRON_TZ= prefix), says them in words for people, and
// tells the next run and the expected interval between runs (for staleness alerts).
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/netresearch/go-cron"
)

// Schedule is a parsed cron specification.
type Schedule struct {
	Spec  string
	sched cron.Schedule
}

// ErrNeverFires is wrapped for a valid specification that names no date that exists.
var ErrNeverFires = errors.New("it never fires: no date matches it")

// Parse reads a specification.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	if s.Next(time.Now()).IsZero() {
		// "0 2 31 2 *": go-cron finds no time in the next five years.
		return nil, fmt.Errorf("schedule %q: %w", spec, ErrNeverFires)
	}
	return &Schedule{Spec: spec, sched: s}, nil
}

// Next returns the first run after t.
func (s *Schedule) Next(t time.Time) time.Time { return s.sched.Next(t) }

// Interval is the longest gap between consecutive runs over the 400 days after from (so a
// monthly schedule gives 31 days): a backup older than this is late.
func (s *Schedule) Interval(from time.Time) time.Duration {
	var longest time.Duration
	prev := s.Next(from)
	end := from.Add(400 * 24 * time.Hour)
	for i := 0; i < 2000 && prev.Before(end) && !prev.IsZero(); i++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	return longest
}

var dayNames = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

var descriptors = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Describe says the schedule in words: "daily at 02:00", "every hour at minute 15",
// "weekly on Sunday at 04:05", "monthly on day 1 at 03:00", "every 6h0m0s". Schedules it has
// no words for are shown as they are written.
func (s *Schedule) Describe() string {
	spec, zone := s.Spec, ""
	if rest, ok := strings.CutPrefix(spec, "CRON_TZ="); ok {
		zone, spec, _ = strings.Cut(rest, " ")
		spec = strings.TrimSpace(spec)
	} else if rest, ok := strings.CutPrefix(spec, "TZ="); ok {
		zone, spec, _ = strings.Cut(rest, " ")
		spec = strings.TrimSpace(spec)
	}
	words := describe(spec)
	if zone != "" {
		words += " (" + zone + ")"
	}
	return words
}

func describe(spec string) string {
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		return "every " + strings.TrimSpace(d)
	}
	if expanded, ok := descriptors[spec]; ok {
		spec = expanded
	}
	f := strings.Fields(spec)
	if len(f) != 5 {
		return "cron " + spec
	}
	minute, hour, dom, month, dow := f[0], f[1], f[2], f[3], f[4]
	m, mErr := strconv.Atoi(minute)
	h, hErr := strconv.Atoi(hour)
	at := fmt.Sprintf("%02d:%02d", h, m)
	switch {
	case minute == "*" && hour == "*" && dom == "*" && month == "*" && dow == "*":
		return "every minute"
	case mErr == nil && hour == "*" && dom == "*" && month == "*" && dow == "*":
		return fmt.Sprintf("every hour at minute %d", m)
	case mErr == nil && strings.HasPrefix(hour, "*/") && dom == "*" && month == "*" && dow == "*":
		return fmt.Sprintf("every %s hours at minute %d", strings.TrimPrefix(hour, "*/"), m)
	case strings.HasPrefix(minute, "*/") && hour == "*" && dom == "*" && month == "*" && dow == "*":
		return fmt.Sprintf("every %s minutes", strings.TrimPrefix(minute, "*/"))
	case mErr != nil || hErr != nil:
		return "cron " + spec
	case dom == "*" && month == "*" && dow == "*":
		return "daily at " + at
	case dom == "*" && month == "*":
		if days := dayList(dow); days != "" {
			return "weekly on " + days + " at " + at
		}
	case month == "*" && dow == "*":
		if d, err := strconv.Atoi(dom); err == nil {
			return fmt.Sprintf("monthly on day %d at %s", d, at)
		}
	case dow == "*":
		if d, err1 := strconv.Atoi(dom); err1 == nil {
			if mo, err2 := strconv.Atoi(month); err2 == nil && mo >= 1 && mo <= 12 {
				return fmt.Sprintf("yearly on %s %d at %s", time.Month(mo), d, at)
			}
		}
	}
	return "cron " + spec
}

// dayList words a day-of-week field of numbers, ranges and lists ("1-5" → "Monday to Friday").
func dayList(field string) string {
	var out []string
	for _, part := range strings.Split(field, ",") {
		if a, b, ok := strings.Cut(part, "-"); ok {
			x, err1 := dayNumber(a)
			y, err2 := dayNumber(b)
			if err1 != nil || err2 != nil {
				return ""
			}
			out = append(out, dayNames[x]+" to "+dayNames[y])
			continue
		}
		x, err := dayNumber(part)
		if err != nil {
			return ""
		}
		out = append(out, dayNames[x])
	}
	return strings.Join(out, ", ")
}

func dayNumber(s string) (int, error) {
	for i, n := range dayNames {
		if strings.EqualFold(s, n[:3]) {
			return i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 7 {
		return 0, fmt.Errorf("not a day: %q", s)
	}
	return n % 7, nil
}
