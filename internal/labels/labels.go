// Package labels reads the docker-backup.* labels of a service into backup jobs. Invalid
// labels give errors that name the container, the label and the value; the service's other
// jobs are still returned, so one typo never stops the rest.
//
//	docker-backup.enable=true                 manage this service
//	docker-backup.strategy=postgres           what to back up (detected when absent)
//	docker-backup.schedule=0 2 * * *          5-field cron, @daily-style descriptors, CRON_TZ= prefix
//	docker-backup.retention=7                 or keep-daily=7,keep-weekly=4,keep-monthly=6
//	docker-backup.target=offsite              a target defined on the sidecar, or several: default,offsite
//	docker-backup.retention.offsite=3         the retention on one of several targets
//	docker-backup.paths=/data,/config         volume strategy: paths in the container
//	docker-backup.database=app                database (postgres), databases (mysql), file (sqlite)
//	docker-backup.stop=true                   stop the service during the backup
//	docker-backup.pre=pg_isready -q           command run in the container before, as argv
//	docker-backup.post=["sh", "-c", "..."]    ... after (a JSON array is taken as is)
//	docker-backup.hook-timeout=2m             how long pre and post may take (default 5m)
//	docker-backup.recipients=age1...,ssh-ed25519 ...  encrypt the backups for these public keys
//	docker-backup.verify=@weekly              verify the job's newest backup on this schedule
//	docker-backup.notify=ops                  the sidecar's notification URL set for the job, or off
//	docker-backup.ping=https://hc-ping.com/…  dead-man pings: URL/start, URL, URL/fail (healthchecks.io, Uptime Kuma)
//	docker-backup.<job>.<key>=...             the same keys for a named job (several per service)
//
// Keys without a job name make the job "default" (when it has a schedule) and are defaults
// that named jobs inherit. On the sidecar's own container, docker-backup.sidecar=true marks
// it and docker-backup.target.<name>=URL defines a target.
//
// This package owns every docker-backup label: other packages use its constants.
package labels

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/kballard/go-shellquote"
)

// Prefix starts every label this package reads.
const Prefix = "docker-backup."

// The labels.
const (
	Enable      = Prefix + "enable"       // on a service: back it up (true) or never (false)
	Sidecar     = Prefix + "sidecar"      // on the sidecar's image: never back it up
	Strategy    = Prefix + "strategy"     // the strategy of the default job
	Schedule    = Prefix + "schedule"     // the schedule of the default job
	TargetLabel = Prefix + "target"       // the target of the default job
	TargetOf    = Prefix + "target."      // + NAME, on the sidecar: defines the target NAME
	Database    = Prefix + "database"     // the database of the default job
	Paths       = Prefix + "paths"        // the paths of the default job
	HookTimeout = Prefix + "hook-timeout" // how long a job's pre and post commands may take
)

// DefaultJob names the job made of the keys without a job name.
const DefaultJob = "default"

// Job is one scheduled backup of a service.
type Job struct {
	Name      string
	Strategy  string // empty: detected
	Schedule  string // empty: backed up by hand only (ParseManual)
	Retention retention.Policy
	Target    string // empty: the sidecar's default target; the first of Targets
	// Targets are the targets every run writes to at once, when there are several.
	Targets []string
	// TargetRetention is the retention on one of Targets, when it is not Retention.
	TargetRetention map[string]retention.Policy
	Paths           []string
	// Exclude are gitignore-style patterns of what a volume backup leaves out below each path.
	Exclude  []string
	Database string
	Stop     bool
	// Incremental makes each backup a snapshot in the target's repository.
	Incremental bool
	Pre, Post   []string
	// HookTimeout bounds each of Pre and Post; zero: the default.
	HookTimeout time.Duration
	// Recipients are public keys the job's backups are encrypted for, besides the sidecar's.
	Recipients []string
	// Verify is the schedule on which the job's newest backup is verified (restored into a
	// scratch copy of the service and compared); empty: never.
	Verify string
	// Notify names the sidecar's notification URL set the job's events go to ("" the
	// default set, "off" none).
	Notify string
	// Ping is a dead-man URL told when each run starts, succeeds or fails.
	Ping string
}

// Error is one invalid label.
type Error struct {
	Container string
	Label     string
	Value     string
	Reason    string
}

func (e *Error) Error() string {
	if MayHoldSecret(e.Value) {
		return fmt.Sprintf("container %s: label %s (value not shown: a URL may hold credentials): %s", e.Container, e.Label, e.Reason)
	}
	return fmt.Sprintf("container %s: label %s=%q: %s", e.Container, e.Label, e.Value, e.Reason)
}

// MayHoldSecret says whether a label's value looks like a URL or user info, which may hold
// credentials: such a value is never repeated in an error.
func MayHoldSecret(v string) bool { return strings.Contains(v, "://") || strings.Contains(v, "@") }

// Options are what the caller knows to check labels against.
type Options struct {
	// Strategies are the valid strategy names.
	Strategies []string
	// Targets are the targets defined on the sidecar; nil skips the check.
	Targets []string
	// NotifySets are the sidecar's notification URL sets; nil skips the check.
	NotifySets []string
	// DefaultRetention applies to jobs without a retention label.
	DefaultRetention retention.Policy
	// Manual reads the default job without a schedule: how an enabled service without one
	// is backed up by hand (`docker backup run SERVICE` through the sidecar).
	Manual bool
}

// retentionOf starts the key of a retention on one of several targets: retention.TARGET.
const retentionOf = "retention."

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName reports whether s may name a job or a target: lowercase letters, digits, - and
// _, starting with a letter or digit, at most 63 characters.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Enabled reports whether the labels ask for the service to be managed, or an error when
// docker-backup.enable is neither true nor false.
func Enabled(container string, labels map[string]string) (bool, error) {
	set, on, err := enable(labels)
	if err != nil {
		return false, &Error{container, Enable, labels[Enable], "must be true or false"}
	}
	return set && on, nil
}

// enable reads docker-backup.enable: whether it is set, and to true.
func enable(labels map[string]string) (set, on bool, err error) {
	v, ok := labels[Enable]
	if !ok {
		return false, false, nil
	}
	on, err = strconv.ParseBool(strings.TrimSpace(v))
	return true, on, err
}

// IsSidecar reports whether the labels are a docker-backup sidecar's.
func IsSidecar(labels map[string]string) bool { return labels[Sidecar] == "true" }

// Excluded reports why a container is never backed up unless asked explicitly — the
// sidecar itself, docker-backup.enable=false (or a value that is not true or false) — or "".
func Excluded(labels map[string]string) string {
	if IsSidecar(labels) {
		return "the docker-backup sidecar itself"
	}
	switch set, on, err := enable(labels); {
	case err != nil:
		return fmt.Sprintf("label %s=%q is neither true nor false", Enable, labels[Enable])
	case set && !on:
		return "label " + Enable + "=false"
	}
	return ""
}

// Targets reads the targets the sidecar's own labels define (docker-backup.target.NAME=URL).
func Targets(labels map[string]string) (map[string]string, []error) {
	out := map[string]string{}
	var errs []error
	for k, v := range labels {
		name, ok := strings.CutPrefix(k, TargetOf)
		if !ok {
			continue
		}
		switch {
		case !ValidName(name):
			errs = append(errs, fmt.Errorf("label %s (value not shown): the target name must be lowercase letters, digits, _ or -", k))
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Errorf("label %s=%q: give the target's directory or URL", k, v))
		default:
			out[name] = strings.TrimSpace(v)
		}
	}
	return out, errs
}

// HasJobLabels reports whether a container carries labels of this package other than the
// sidecar's mark.
func HasJobLabels(labels map[string]string) bool {
	for k := range labels {
		if strings.HasPrefix(k, Prefix) && k != Sidecar {
			return true
		}
	}
	return false
}

// Parse reads the jobs of one container's labels. It returns the valid jobs, sorted by name,
// and one error per invalid label or job.
func Parse(container string, labels map[string]string, opts Options) ([]Job, []error) {
	p := &parser{container: container, opts: opts}
	defaults, perJob := p.split(labels)
	if _, ok := defaults["schedule"]; ok || opts.Manual {
		perJob[""] = map[string]string{}
	}
	var jobs []Job
	for job, own := range perJob {
		if j, ok := p.job(job, own, defaults); ok {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Name < jobs[b].Name })
	return jobs, p.errs
}

// parser reads one container's labels, collecting an error per invalid label.
type parser struct {
	container string
	opts      Options
	errs      []error
}

func (p *parser) fail(label, value, reason string) {
	p.errs = append(p.errs, &Error{p.container, label, value, reason})
}

// labelOf is the label of key for job ("": a key without a job name).
func labelOf(job, key string) string {
	if job == "" {
		return Prefix + key
	}
	return Prefix + job + "." + key
}

// split sorts the labels into the keys without a job name (defaults) and each named job's.
func (p *parser) split(labels map[string]string) (map[string]string, map[string]map[string]string) {
	defaults := map[string]string{}
	perJob := map[string]map[string]string{}
	for _, label := range slices.Sorted(maps.Keys(labels)) {
		rest, ok := strings.CutPrefix(label, Prefix)
		if !ok || rest == "enable" || rest == "sidecar" {
			continue
		}
		value := labels[label]
		job, key, named := strings.Cut(rest, ".")
		if !named || job == "retention" {
			job, key, named = "", rest, false
		}
		if _, known := jobKeyOf(key); !known && !strings.HasPrefix(key, retentionOf) {
			p.fail(label, value, fmt.Sprintf("unknown key %q (known: %s)", key, strings.Join(keyNames(), ", ")))
			continue
		}
		if named && (!ValidName(job) || job == DefaultJob) {
			p.fail(label, value, fmt.Sprintf("job name %q must be lowercase letters, digits, - or _ (and not %q)", job, DefaultJob))
			continue
		}
		if job == "" {
			defaults[key] = value
			continue
		}
		if perJob[job] == nil {
			perJob[job] = map[string]string{}
		}
		perJob[job][key] = value
	}
	return defaults, perJob
}

// job reads one job from its own keys and the defaults; ok is false when a label of it is
// invalid.
func (p *parser) job(job string, own, defaults map[string]string) (Job, bool) {
	j := Job{Name: job, Retention: p.opts.DefaultRetention}
	if job == "" {
		j.Name = DefaultJob
	}
	before := len(p.errs)
	for _, k := range jobKeys {
		v, label, ok := own[k.name], labelOf(job, k.name), false
		if _, ok = own[k.name]; !ok {
			v, ok = defaults[k.name]
			label = labelOf("", k.name)
		}
		switch {
		case ok:
			k.set(&j, v, p.opts, func(value, reason string) { p.fail(label, value, reason) })
		case k.required != "" && (!p.opts.Manual || job != ""):
			p.fail(labelOf(job, k.name), "", k.required)
		}
		if k.name == "target" {
			p.targetRetention(&j, job, own, defaults)
		}
	}
	return j, len(p.errs) == before
}

// targetRetention reads retention.TARGET, the retention on one of the job's several targets;
// one inherited from the defaults applies to a named job only when it writes to TARGET.
func (p *parser) targetRetention(j *Job, job string, own, defaults map[string]string) {
	targets := j.Targets
	if targets == nil {
		targets = []string{j.Target}
	}
	set := func(key, v, label string, strict bool) {
		t, _ := strings.CutPrefix(key, retentionOf)
		pol, err := retention.Parse(v)
		switch {
		case !slices.Contains(targets, t) || len(targets) < 2:
			if strict {
				p.fail(label, v, fmt.Sprintf("the job does not write to several targets including %q (its targets: %s)", t, strings.Join(targets, ",")))
			}
		case err != nil:
			p.fail(label, v, err.Error())
		default:
			if j.TargetRetention == nil {
				j.TargetRetention = map[string]retention.Policy{}
			}
			j.TargetRetention[t] = pol
		}
	}
	for key, v := range defaults {
		if _, overridden := own[key]; strings.HasPrefix(key, retentionOf) && !overridden {
			set(key, v, labelOf("", key), job == "")
		}
	}
	for key, v := range own {
		if strings.HasPrefix(key, retentionOf) {
			set(key, v, labelOf(job, key), true)
		}
	}
}

// Argv reads a hook command: a JSON array of strings is taken as is; otherwise the words are
// split as a shell would split them (quotes, backslashes) without running a shell. A shell
// runs only when the command names one: sh -c '...'.
func Argv(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	var argv []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("not a JSON array of strings: %v", err)
		}
	} else {
		var err error
		if argv, err = shellquote.Split(s); err != nil {
			return nil, fmt.Errorf("cannot split into words: %v (quote it, or give a JSON array)", err)
		}
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("empty command")
	}
	return argv, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkPingURL accepts an http:// or https:// URL with a host.
func checkPingURL(v string) error {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http:// or https:// URL (a healthchecks.io check or an Uptime Kuma push URL)")
	}
	return nil
}
