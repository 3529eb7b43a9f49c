package config

import (
	"errors"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/worker"
)

// setting is one variable of the sidecar's environment: its default, what it means, and how
// its value sets the configuration. set is given the value trimmed, or def when the variable
// is unset or blank — or, with raw, the value as it is, and only when the variable is set.
type setting struct {
	env string
	def string
	doc string
	raw bool
	set func(c *Config, v string, p problems)
}

// settings are the variables of one value each, in the order they are read (the recipients of
// a file after those of the variable). Families of variables — DOCKER_BACKUP_TARGET_NAME and
// DOCKER_BACKUP_NOTIFY_URLS_NAME — are read by namedTargets and notifySets.
var settings = []setting{
	{env: EnvProject, doc: "the compose project to manage (default: the sidecar's own)", set: func(c *Config, v string, _ problems) { c.Project = v }},
	{env: EnvTarget, doc: `the "default" target: a directory, an s3://, sftp:// or webdav:// URL`, raw: true, set: setDefaultTarget},
	{env: EnvState, def: "/var/lib/docker-backup", doc: "the catalog, the signing key and the control socket", set: func(c *Config, v string, _ problems) { c.StateDir = v }},
	{env: EnvListen, def: ":9090", doc: "the address of /metrics, /healthz and /readyz", set: func(c *Config, v string, _ problems) { c.Listen = v }},
	{env: EnvCatalogSchedule, def: "@daily", doc: `the schedule of the catalog's backup to the default target, or "off"`, set: setCatalogSchedule},
	{env: EnvCheckSchedule, doc: `the schedule of the check of every target's snapshot repository (incremental jobs), or "off"`, set: func(c *Config, v string, p problems) {
		if v == "" || v == "off" || v == "none" {
			return
		}
		if _, err := schedule.Parse(v); err != nil {
			p.bad(v, err.Error()+` (or "off")`)
		}
		c.CheckSchedule = v
	}},
	{env: EnvCheckReadData, def: "10%", doc: "the share of the packs each scheduled check reads and checks (0% to 100%)", set: func(c *Config, v string, p problems) {
		f, err := snapshots.ParseShare(v)
		if err != nil {
			p.bad(v, err.Error())
		}
		c.CheckReadData = f
	}},
	{env: EnvScope, def: "project", doc: "project (the sidecar's own) or all (every project on the host)", set: setScope},
	{env: EnvPrefix, doc: "the key prefix on every target (default: the host's name on S3 and SFTP)", raw: true, set: func(c *Config, v string, _ problems) {
		p := strings.Trim(strings.TrimSpace(v), "/")
		c.Prefix = &p
	}},
	{env: EnvMaxConcurrent, def: "1", doc: "how many jobs run at once", set: func(c *Config, v string, p problems) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			p.bad(v, "must be a whole number, 1 or more")
		}
		c.MaxConcurrent = n
	}},
	{env: EnvTimeout, def: "6h", doc: "how long a run or restore may take", set: duration(func(c *Config) *time.Duration { return &c.Timeout })},
	{env: EnvJitter, def: "0s", doc: "a random delay up to this before each scheduled run", set: duration(func(c *Config) *time.Duration { return &c.Jitter })},
	{env: EnvSwarmManager, doc: "on a Swarm worker node: a manager's Engine API (unix:// or tcp://), to read services and scale them", set: func(c *Config, v string, p problems) {
		if v != "" && !strings.HasPrefix(v, "unix:///") && !strings.HasPrefix(v, "tcp://") {
			p.bad(v, "must be a unix:///PATH or tcp://HOST:PORT Docker endpoint")
		}
		c.SwarmManager = v
	}},
	{env: EnvSwarmManagerCerts, doc: "a directory with ca.pem, cert.pem and key.pem for a tcp:// " + EnvSwarmManager + " (TLS)", set: func(c *Config, v string, _ problems) { c.SwarmManagerCerts = v }},
	{env: EnvResync, def: "5m", doc: "how often the labels are read in full, behind the events stream", set: func(c *Config, v string, p problems) {
		duration(func(c *Config) *time.Duration { return &c.Resync })(c, v, p)
		if c.Resync == 0 {
			p.bad("0", "must be more than 0: it is the safety net behind the events stream")
		}
	}},
	{env: EnvHookTimeout, def: "5m", doc: "how long a job's pre or post command may take", set: func(c *Config, v string, p problems) {
		duration(func(c *Config) *time.Duration { return &c.HookTimeout })(c, v, p)
		if c.HookTimeout == 0 {
			p.bad("0", "must be more than 0")
		}
	}},
	{env: "TZ", doc: "the time zone of schedules without CRON_TZ= and of retention's days", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		if loc, err := time.LoadLocation(v); err != nil {
			p.bad(v, "not a time zone name like Europe/Berlin or UTC")
		} else {
			c.Location = loc
		}
	}},
	{env: EnvRetention, doc: "the retention of jobs without a retention label", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		pol, err := retention.Parse(v)
		if err != nil {
			p.bad(v, err.Error())
		}
		c.DefaultRetention = pol
	}},
	{env: EnvSchedule, doc: "the schedule of enabled services without a schedule label", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		if _, err := schedule.Parse(v); err != nil {
			p.bad(v, err.Error())
		}
		c.DefaultSchedule = v
	}},
	{env: EnvSigningKeyFile, doc: "the file of the key manifests are signed with", set: func(c *Config, v string, p problems) {
		c.SigningKeyFile = absoluteFile(v, p)
	}},
	{env: EnvRepositoryKeyFile, doc: "the key file of an encrypted snapshot repository made by another host (incremental jobs); one made here is kept in the state directory", set: func(c *Config, v string, p problems) {
		c.RepositoryKeyFile = absoluteFile(v, p)
	}},
	{env: artifact.EnvTrustedKeys, doc: "public keys of other hosts whose backups are trusted too, one a line", raw: true, set: func(c *Config, v string, p problems) {
		keys, err := artifact.ParsePublicKeys(v, artifact.EnvTrustedKeys)
		if err != nil {
			p.bad(v, err.Error())
		}
		c.TrustedKeys = append(c.TrustedKeys, keys...)
	}},
	{env: artifact.EnvTrustedKeysFile, doc: "a file of public keys of other hosts whose backups are trusted too, one a line", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		keys, err := artifact.LoadPublicKeys(absoluteFile(v, p))
		if err != nil {
			p.bad(v, err.Error())
		}
		c.TrustedKeys = append(c.TrustedKeys, keys...)
	}},
	{env: EnvAgeRecipients, doc: "public keys every backup is encrypted for", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		var r crypt.Recipients
		if err := r.Add(v); err != nil {
			p.bad(v, err.Error())
		}
		c.AgeRecipients = append(c.AgeRecipients, v)
	}},
	{env: EnvAgeRecipients + "_FILE", doc: "a file of public keys every backup is encrypted for, one a line", set: setRecipientsFile},
	{env: EnvAgeIdentityFile, doc: "the age identity or SSH key that decrypts for restores and verifies", set: func(c *Config, v string, p problems) {
		c.AgeIdentityFile = absoluteFile(v, p)
	}},
	{env: EnvNotifyLevel, def: "error", doc: "error: failures only; info: successes too", set: func(c *Config, v string, p problems) {
		if level, err := notify.ParseLevel(v); err != nil {
			p.bad(v, err.Error())
		} else {
			c.NotifyLevel = level
		}
	}},
	{env: EnvNotifyTemplate, doc: "a Go text/template for the notifications' text", set: func(c *Config, v string, p problems) {
		if v == "" {
			return
		}
		if b, err := os.ReadFile(v); err != nil {
			p.bad(v, err.Error())
		} else {
			c.NotifyTemplate = string(b)
		}
	}},
	{env: EnvCompression, def: string(artifact.Zstd), doc: "zstd or gzip", set: func(c *Config, v string, p problems) {
		comp, err := artifact.ParseCompression(v)
		if err != nil {
			p.bad(v, err.Error())
		}
		c.Compression = comp
	}},
	{env: EnvLimitUpload, doc: "cap the uploads to each remote target, like 10MiB/s (a directory target is written at full speed)", set: func(c *Config, v string, p problems) {
		r, err := bandwidth.ParseRate(v)
		if err != nil {
			p.bad(v, err.Error())
		}
		c.LimitUpload = r
	}},
	{env: worker.EnvMode, doc: "volume jobs in a worker container: auto, on or off", set: func(c *Config, v string, p problems) {
		var err error
		if c.Worker, err = worker.ParseMode(v); err != nil {
			p.bad(v, "use auto, on or off")
		}
	}},
}

// duration sets the duration field dst gives.
func duration(dst func(*Config) *time.Duration) func(c *Config, v string, p problems) {
	return func(c *Config, v string, p problems) {
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			p.bad(v, "must be a duration like 30s, 15m or 6h")
		}
		*dst(c) = x
	}
}

func setDefaultTarget(c *Config, v string, p problems) {
	c.defaultFromEnv = true
	if t := strings.TrimSpace(v); t != "" {
		c.Targets["default"] = t
	}
	if err := CheckTargetURL(v); errors.Is(err, target.ErrSecretInURL) {
		p.hidden(err.Error())
	} else if err != nil {
		p.bad(v, err.Error())
	}
}

func setScope(c *Config, v string, p problems) {
	switch v {
	case "project":
	case "all":
		c.AllProjects = true
	default:
		p.bad(v, "must be project (the sidecar's own compose project, the default) or all (every project on the host)")
	}
}

func setCatalogSchedule(c *Config, v string, p problems) {
	c.CatalogBackup = v
	if v == "off" || v == "none" {
		c.CatalogBackup = ""
	} else if _, err := schedule.Parse(v); err != nil {
		p.bad(v, err.Error()+` (or "off")`)
	}
}

func setRecipientsFile(c *Config, f string, p problems) {
	if f == "" {
		return
	}
	if b, err := os.ReadFile(f); err != nil {
		p.bad(f, err.Error())
	} else if err := (&crypt.Recipients{}).Add(string(b)); err != nil {
		p.bad(f, err.Error())
	} else {
		c.AgeRecipients = append(c.AgeRecipients, string(b))
	}
}

// absoluteFile refuses a file that is not named by an absolute path.
func absoluteFile(v string, p problems) string {
	if v != "" && !path.IsAbs(v) {
		p.bad(v, "must be an absolute path in the sidecar container (a Docker secret: /run/secrets/...)")
	}
	return v
}

// SuffixLimitUpload ends the variable of one target's upload cap:
// DOCKER_BACKUP_TARGET_OFFSITE_LIMIT_UPLOAD (DOCKER_BACKUP_TARGET_LIMIT_UPLOAD: the default
// target's).
const SuffixLimitUpload = "_LIMIT_UPLOAD"

// targetLimits reads the upload cap of each target that has one of its own.
func targetLimits(c *Config, env map[string]string, errs *[]string) {
	for k, v := range env {
		rest, ok := strings.CutPrefix(k, EnvTarget)
		if !ok || !strings.HasSuffix(rest, SuffixLimitUpload) {
			continue
		}
		name := "default"
		if rest = strings.TrimSuffix(rest, SuffixLimitUpload); rest != "" {
			if !strings.HasPrefix(rest, "_") {
				continue
			}
			name = strings.ReplaceAll(strings.ToLower(rest[1:]), "_", "-")
		}
		r, err := bandwidth.ParseRate(v)
		if err != nil {
			problems{env: k, errs: errs}.bad(v, err.Error())
			continue
		}
		if c.TargetLimits == nil {
			c.TargetLimits = map[string]bandwidth.Rate{}
		}
		c.TargetLimits[name] = r
	}
}

// UploadLimit is the cap of the uploads to the target name: its own, else
// DOCKER_BACKUP_LIMIT_UPLOAD; 0: none.
func (c Config) UploadLimit(name string) bandwidth.Rate {
	if r, ok := c.TargetLimits[name]; ok {
		return r
	}
	return c.LimitUpload
}
