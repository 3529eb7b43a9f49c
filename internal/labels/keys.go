package labels

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// jobKey is one key of a job's labels (docker-backup.KEY, docker-backup.JOB.KEY): what it
// means, and how its value sets the job. set reports what is wrong with the value through
// fail, with the value to show (never one that may be a secret).
type jobKey struct {
	name string
	doc  string
	// required is the error when neither the job nor the defaults give the key; "": optional.
	required string
	set      func(j *Job, v string, opts Options, fail func(value, reason string))
}

// jobKeys are the keys of a job, in the order they are read: target before the retention of
// each target (retention.TARGET, read by parser.targetRetention).
var jobKeys = []jobKey{
	{name: "schedule", doc: "5-field cron, @daily-style descriptors, @every, an optional CRON_TZ=Zone prefix",
		required: `a job needs a schedule (e.g. "0 2 * * *" or @daily)`, set: setSchedule},
	{name: "verify", doc: "verify the job's newest backup on this schedule", set: setVerify},
	{name: "strategy", doc: "what to back up; detected when absent", set: setStrategy},
	{name: "retention", doc: "keep the newest N, or keep-last/daily/weekly/monthly/yearly rules", set: setRetention},
	{name: "target", doc: "a target defined on the sidecar, or several, comma-separated", set: setTarget},
	{name: "paths", doc: "volume strategy: absolute paths in the container, comma-separated", set: setPaths},
	{name: "exclude", doc: "volume strategy: gitignore-style patterns of what to leave out below each path, comma-separated", set: setExclude},
	{name: "database", doc: "the database (postgres), databases (mysql) or file (sqlite)", set: func(j *Job, v string, _ Options, _ func(string, string)) {
		j.Database = strings.TrimSpace(v)
	}},
	{name: "stop", doc: "stop the service (and its dependents) during the backup", set: setStop},
	{name: "incremental", doc: `"true": each backup is a snapshot in the target's repository (_repository/), storing only what changed`, set: setIncremental},
	{name: "hook-timeout", doc: "how long pre and post may each take", set: setHookTimeout},
	{name: "recipients", doc: "public keys (age, SSH) the backups are encrypted for too", set: setRecipients},
	{name: "notify", doc: `the sidecar's notification URL set for the job's events, or "off"`, set: setNotify},
	{name: "ping", doc: "a dead-man URL told when each run starts, succeeds or fails", set: setPing},
	{name: "pre", doc: "a command run in the container before the backup (argv, or a JSON array)", set: func(j *Job, v string, _ Options, fail func(string, string)) {
		j.Pre = hook(v, fail)
	}},
	{name: "post", doc: "a command run in the container after the backup, whatever happened", set: func(j *Job, v string, _ Options, fail func(string, string)) {
		j.Post = hook(v, fail)
	}},
}

// jobKeyOf finds a key of jobKeys by name.
func jobKeyOf(name string) (jobKey, bool) {
	i := slices.IndexFunc(jobKeys, func(k jobKey) bool { return k.name == name })
	if i < 0 {
		return jobKey{}, false
	}
	return jobKeys[i], true
}

// keyNames lists the keys of a job, sorted.
func keyNames() []string {
	names := make([]string, 0, len(jobKeys))
	for _, k := range jobKeys {
		names = append(names, k.name)
	}
	slices.Sort(names)
	return names
}

func setSchedule(j *Job, v string, _ Options, fail func(string, string)) {
	if _, err := schedule.Parse(strings.TrimSpace(v)); errors.Is(err, schedule.ErrNeverFires) {
		fail(v, schedule.ErrNeverFires.Error())
	} else if err != nil {
		fail(v, fmt.Sprintf("not a schedule: %v (use 5 fields: minute hour day-of-month month day-of-week, a descriptor like @daily or @every 6h, optionally after CRON_TZ=Zone)", errors.Unwrap(err)))
	} else {
		j.Schedule = strings.TrimSpace(v)
	}
}

func setVerify(j *Job, v string, _ Options, fail func(string, string)) {
	if _, err := schedule.Parse(strings.TrimSpace(v)); err != nil {
		fail(v, fmt.Sprintf("not a schedule: %v (verify takes a schedule like the backups': @weekly, \"0 4 * * 0\")", err))
	} else {
		j.Verify = strings.TrimSpace(v)
	}
}

func setStrategy(j *Job, v string, opts Options, fail func(string, string)) {
	v = strings.TrimSpace(v)
	if !slices.Contains(opts.Strategies, v) {
		fail(v, "unknown strategy: use one of "+strings.Join(opts.Strategies, ", "))
	}
	j.Strategy = v
}

func setRetention(j *Job, v string, _ Options, fail func(string, string)) {
	p, err := retention.Parse(v)
	if err != nil {
		fail(v, err.Error())
	}
	j.Retention = p
}

func setTarget(j *Job, v string, opts Options, fail func(string, string)) {
	var names []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		switch {
		case MayHoldSecret(t):
			fail(v, "names targets defined on the sidecar, not a URL: define the URL on the sidecar (DOCKER_BACKUP_TARGET_NAME or its label docker-backup.target.NAME) and name it here")
		case opts.Targets != nil && !slices.Contains(opts.Targets, t):
			fail(v, fmt.Sprintf("no target %q is defined on the sidecar (defined: %s)", t, strings.Join(opts.Targets, ", ")))
		case slices.Contains(names, t):
			fail(v, fmt.Sprintf("the target %q is named twice", t))
		}
		names = append(names, t)
	}
	j.Target = names[0]
	if len(names) > 1 {
		j.Targets = names
	}
}

func setPaths(j *Job, v string, _ Options, fail func(string, string)) {
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p != "/" {
			p = strings.TrimSuffix(p, "/")
		}
		if !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p {
			fail(v, fmt.Sprintf("path %q must be an absolute, clean path inside the container (like /data), not / and without . or ..", p))
			continue
		}
		j.Paths = append(j.Paths, p)
	}
}

func setExclude(j *Job, v string, _ Options, fail func(string, string)) {
	var patterns []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	if err := exclude.Check(patterns); err != nil {
		fail(v, err.Error())
		return
	}
	// The strategy is read first: a database's job refuses exclusions now, not at its run.
	if j.Strategy != "" && j.Strategy != "volume" {
		fail(v, fmt.Sprintf("exclusions apply to the volume strategy only, which backs up files; the %s strategy backs up the whole database", j.Strategy))
		return
	}
	j.Exclude = patterns
}

func setStop(j *Job, v string, _ Options, fail func(string, string)) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		fail(v, "must be true or false")
	}
	j.Stop = b
}

func setIncremental(j *Job, v string, _ Options, fail func(string, string)) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		fail(v, "must be true or false")
	}
	j.Incremental = b
}

func setHookTimeout(j *Job, v string, _ Options, fail func(string, string)) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		fail(v, "must be a duration like 30s, 5m or 1h")
	}
	j.HookTimeout = d
}

// setRecipients takes public keys only: labels are public (anyone who can docker inspect
// reads them).
func setRecipients(j *Job, v string, _ Options, fail func(string, string)) {
	var r crypt.Recipients
	if err := r.Add(v); err != nil {
		fail("(not shown)", err.Error())
	} else {
		j.Recipients = []string{v}
	}
}

func setNotify(j *Job, v string, opts Options, fail func(string, string)) {
	v = strings.TrimSpace(v)
	switch {
	case v == "off":
	case !ValidName(v):
		fail(v, `must name a notification URL set of the sidecar (DOCKER_BACKUP_NOTIFY_URLS_NAME), "default" or "off"`)
	case opts.NotifySets != nil && !slices.Contains(opts.NotifySets, v):
		fail(v, fmt.Sprintf("the sidecar has no notification URL set %q (sets: %s; define one with DOCKER_BACKUP_NOTIFY_URLS_%s), or use off", v, orNone(opts.NotifySets), strings.ToUpper(strings.ReplaceAll(v, "-", "_"))))
	}
	j.Notify = v
}

// setPing: the URL is the check's key, never printed, even in an error.
func setPing(j *Job, v string, _ Options, fail func(string, string)) {
	if err := checkPingURL(v); err != nil {
		fail("(not shown)", err.Error())
	}
	j.Ping = strings.TrimSpace(v)
}

// hook reads a pre or post command (see Argv).
func hook(v string, fail func(string, string)) []string {
	argv, err := Argv(v)
	if err != nil {
		fail(v, err.Error())
	}
	return argv
}
