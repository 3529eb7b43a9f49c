// Package selection is the one rule that decides which backups on a target are a service's
// and which of them may be used: restore and verify ("latest"), ls, retention and the sidecar
// all select with a Filter, so that none of them can count, choose or delete a backup the
// others would not.
package selection

import (
	"fmt"
	"path"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// Filter selects a service's backups: Match tells whether a backup is one of them, and if so
// whether it may be used — signed by a trusted key (unless AllowUnsigned) and not dated in
// the future.
type Filter struct {
	// Project and Service narrow to one service ("" any); a backup of a container outside
	// compose matches its container name as the service.
	Project, Service string
	// ExactProject holds backups to Project even when it is "" (a container outside
	// compose): restore's "latest" never takes another project's backup.
	ExactProject bool
	// Job narrows to one sidecar job's backups ("" any job, or none).
	Job string
	// Dir, when set, is the directory the backups must be directly in (a job's prune sees
	// only its own service's directory under its own prefix).
	Dir string
	// AllowUnsigned lets backups no trusted key signed be used (restore --allow-unsigned).
	AllowUnsigned bool
	// Now is the time to compare creation times with (zero: time.Now()).
	Now time.Time
}

// Verdict is what a Filter says of one backup.
type Verdict int

// The verdicts.
const (
	// Other: not one of the filter's backups.
	Other Verdict = iota
	// Usable: one of them, and it may be used.
	Usable
	// Untrusted: one of them, but no trusted key signed it.
	Untrusted
	// Future: one of them, but dated in the future (a host's clock ahead, or a forgery that
	// would otherwise be "latest" forever).
	Future
)

// Match tells whether s is one of the filter's backups and whether it may be used; for one
// that may not, why not.
func (f Filter) Match(s artifact.Summary) (Verdict, string) {
	switch {
	case (f.Project != "" || f.ExactProject) && s.Project != f.Project,
		f.Service != "" && s.Service != f.Service && !(s.Service == "" && s.Container == f.Service),
		f.Job != "" && s.Job != f.Job,
		f.Dir != "" && path.Dir(s.Key) != f.Dir:
		return Other, ""
	case s.InFuture(f.now()):
		return Future, fmt.Sprintf("%s (dated in the future: %s)", s.Key, s.CreatedAt.Format(time.RFC3339))
	case !s.Trusted() && !f.AllowUnsigned:
		return Untrusted, fmt.Sprintf("%s: %s", s.Key, s.Untrusted)
	}
	return Usable, ""
}

func (f Filter) now() time.Time {
	if f.Now.IsZero() {
		return time.Now()
	}
	return f.Now
}

// Selected is what a Filter picked from a listing.
type Selected struct {
	// Usable are the backups that may be used, in the listing's order.
	Usable []artifact.Summary
	// Skipped are the filter's backups that may not be used, with why.
	Skipped []Skip
}

// Skip is one of the filter's backups that may not be used.
type Skip struct {
	Backup  artifact.Summary
	Verdict Verdict
	Why     string
}

// Select sorts a listing's backups by the filter.
func (f Filter) Select(backups []artifact.Summary) Selected {
	var out Selected
	for _, s := range backups {
		switch v, why := f.Match(s); v {
		case Usable:
			out.Usable = append(out.Usable, s)
		case Untrusted, Future:
			out.Skipped = append(out.Skipped, Skip{Backup: s, Verdict: v, Why: why})
		}
	}
	return out
}

// Latest is the newest usable backup (by creation time, then key), and the filter's backups
// newer than it that were passed over because they may not be used (all of them when none is
// usable).
func (f Filter) Latest(backups []artifact.Summary) (artifact.Summary, []Skip, bool) {
	sel := f.Select(backups)
	var best artifact.Summary
	found := false
	for _, s := range sel.Usable {
		if !found || Newer(s, best) {
			best, found = s, true
		}
	}
	var passed []Skip
	for _, sk := range sel.Skipped {
		if !found || Newer(sk.Backup, best) {
			passed = append(passed, sk)
		}
	}
	return best, passed, found
}

// Newer orders backups newest first: by creation time, then by key (keys sort by time).
func Newer(a, b artifact.Summary) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.Key > b.Key
}
