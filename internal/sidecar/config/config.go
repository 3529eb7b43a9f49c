// Package config reads the sidecar's configuration from its environment and its own labels.
// Every invalid value is refused with the variable, what is allowed and — unless the
// variable may hold a secret — the value.
package config

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/targets"
	"github.com/docker-backup/docker-backup/internal/worker"
)

// Config is the sidecar's configuration, read from its environment.
type Config struct {
	// Project is the compose project whose services are managed; empty with AllProjects.
	Project string
	// SwarmManager is a manager's Engine API for a sidecar on a Swarm worker node;
	// SwarmManagerCerts its TLS client certificates (a directory).
	SwarmManager, SwarmManagerCerts string
	AllProjects                     bool
	// Targets maps target names to URLs (a directory, s3://..., sftp://... or webdav://...). "default" always exists.
	Targets map[string]string
	// Prefix goes before every key on every target; nil picks the default: the Docker host's
	// name on S3 and SFTP targets (many hosts share a bucket or a server), nothing on local ones.
	Prefix           *string
	StateDir         string
	Listen           string
	MaxConcurrent    int
	Timeout          time.Duration
	Jitter           time.Duration
	Resync           time.Duration
	Location         *time.Location
	DefaultRetention retention.Policy
	// DefaultSchedule applies to enabled services without a schedule label; empty: none.
	DefaultSchedule string
	Compression     artifact.Compression
	// Worker says whether volume work runs in a worker container (DOCKER_BACKUP_WORKER).
	Worker worker.Mode
	// CatalogBackup is the schedule of the catalog's own backup to the default target; empty: off.
	CatalogBackup string
	// HookTimeout bounds a job's pre and post commands (a job's label can set its own).
	HookTimeout time.Duration
	// SigningKeyFile holds the key manifests are signed with; empty: one the sidecar makes
	// in its state directory.
	SigningKeyFile string
	// CheckSchedule is when the targets' snapshot repositories are checked ("" never), reading
	// CheckReadData (0 to 1) of their packs.
	CheckSchedule string
	CheckReadData float64
	// RepositoryKeyFile is the key file of an encrypted snapshot repository made elsewhere.
	RepositoryKeyFile string
	// TrustedKeys are other hosts' public keys: their backups are trusted for restores,
	// verifies and retention, beside the sidecar's own.
	TrustedKeys []artifact.PublicKey
	// AgeRecipients are the public keys every job's backups are encrypted for (a job's
	// docker-backup.recipients label adds its own); none: not encrypted.
	AgeRecipients []string
	// AgeIdentityFile decrypts encrypted backups for restores through the sidecar.
	AgeIdentityFile string
	// NotifySets are the notification URL sets by name ("default": DOCKER_BACKUP_NOTIFY_URLS).
	NotifySets map[string][]string
	// NotifyLevel says which events are sent (notify.LevelError: failures only).
	NotifyLevel notify.Level
	// NotifyTemplate replaces the default message text (a Go text/template).
	NotifyTemplate string
	// LimitUpload caps the uploads to every remote target; TargetLimits, to one target (by
	// name; 0: none) instead. See UploadLimit.
	LimitUpload  bandwidth.Rate
	TargetLimits map[string]bandwidth.Rate

	defaultFromEnv bool // DOCKER_BACKUP_TARGET was set
}

// Environment variables the sidecar reads.
const (
	EnvProject           = "DOCKER_BACKUP_PROJECT"
	EnvSwarmManager      = "DOCKER_BACKUP_SWARM_MANAGER"
	EnvSwarmManagerCerts = "DOCKER_BACKUP_SWARM_MANAGER_CERTS"
	EnvScope             = "DOCKER_BACKUP_SCOPE"
	EnvTarget            = "DOCKER_BACKUP_TARGET"
	EnvPrefix            = "DOCKER_BACKUP_PREFIX"
	EnvState             = "DOCKER_BACKUP_STATE"
	EnvListen            = "DOCKER_BACKUP_LISTEN"
	EnvMaxConcurrent     = "DOCKER_BACKUP_MAX_CONCURRENT"
	EnvTimeout           = "DOCKER_BACKUP_TIMEOUT"
	EnvJitter            = "DOCKER_BACKUP_JITTER"
	EnvResync            = "DOCKER_BACKUP_RESYNC"
	EnvRetention         = "DOCKER_BACKUP_RETENTION"
	EnvSchedule          = "DOCKER_BACKUP_SCHEDULE"
	EnvCompression       = "DOCKER_BACKUP_COMPRESSION"
	EnvCatalogSchedule   = "DOCKER_BACKUP_CATALOG_SCHEDULE"
	EnvCheckSchedule     = "DOCKER_BACKUP_CHECK_SCHEDULE"
	EnvCheckReadData     = "DOCKER_BACKUP_CHECK_READ_DATA"
	EnvHookTimeout       = "DOCKER_BACKUP_HOOK_TIMEOUT"
	EnvSigningKeyFile    = "DOCKER_BACKUP_SIGNING_KEY_FILE"
	// EnvRepositoryKeyFile is snapshots.EnvKeyFile.
	EnvRepositoryKeyFile = "DOCKER_BACKUP_REPOSITORY_KEY_FILE"
	EnvAgeRecipients     = "DOCKER_BACKUP_AGE_RECIPIENTS"
	EnvAgeIdentityFile   = "DOCKER_BACKUP_AGE_IDENTITY_FILE"
	EnvNotifyURLs        = "DOCKER_BACKUP_NOTIFY_URLS" // + "_" + NAME: the set NAME; + "_FILE": from a file
	EnvNotifyLevel       = "DOCKER_BACKUP_NOTIFY_LEVEL"
	EnvNotifyTemplate    = "DOCKER_BACKUP_NOTIFY_TEMPLATE_FILE"
	EnvLimitUpload       = "DOCKER_BACKUP_LIMIT_UPLOAD" // EnvTarget + "[_NAME]" + SuffixLimitUpload: one target's
	// EnvTarget + "_" + NAME defines the target NAME (lowercase, "_" read as "-").
)

// secretWord marks a variable name whose value may be a secret: such a value is never
// printed, not even in an error about it.
var secretWord = regexp.MustCompile(`(?i)(KEY|SECRET|TOKEN|PASS|CREDENTIAL|AUTH)`)

// secretPart marks a target name with a word of a secret's variable among its parts (OFFSITE_KEY,
// NAS_PASSWORD): such a variable is refused as a target, its value never shown. A word inside a
// name (MONKEY, PASSAU) is not one.
var secretPart = regexp.MustCompile(`(?i)(^|_)(KEYS?|API_?KEY|SECRETS?|TOKENS?|PASS|PASSWD|PASSWORDS?|PASSPHRASE|CREDENTIALS?|AUTH)(_|$)`)

// FromEnv reads the configuration from KEY=VALUE pairs (os.Environ()). Every invalid value
// is reported, naming the variable, what is allowed and (unless it may be a secret) the value.
func FromEnv(environ []string) (Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	cfg := Config{Targets: map[string]string{"default": "/backups"}, Location: time.Local}
	var errs []string
	for _, s := range settings {
		raw, present := env[s.env]
		v := s.def
		if t := strings.TrimSpace(raw); present && t != "" {
			v = t
		}
		if s.raw {
			if !present {
				continue
			}
			v = raw
		}
		s.set(&cfg, v, problems{env: s.env, errs: &errs})
	}
	namedTargets(&cfg, env, &errs)
	targetLimits(&cfg, env, &errs)
	cfg.NotifySets = notifySets(env, &errs)
	if len(errs) > 0 {
		sort.Strings(errs)
		return cfg, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return cfg, nil
}

// problems collects what is wrong with the variable env.
type problems struct {
	env  string
	errs *[]string
}

// bad reports the value v and what is allowed; the value is not shown when the variable's
// name says it may be a secret.
func (p problems) bad(v, allowed string) {
	if secretWord.MatchString(p.env) {
		p.hidden(allowed)
		return
	}
	*p.errs = append(*p.errs, fmt.Sprintf("%s=%q: %s", p.env, v, allowed))
}

// hidden reports what is allowed, never the value.
func (p problems) hidden(allowed string) {
	*p.errs = append(*p.errs, fmt.Sprintf("%s (value not shown): %s", p.env, allowed))
}

// namedTargets reads DOCKER_BACKUP_TARGET_NAME, the target NAME, for every NAME.
func namedTargets(cfg *Config, env map[string]string, errs *[]string) {
	for k, v := range env {
		name, ok := strings.CutPrefix(k, EnvTarget+"_")
		if !ok || strings.HasSuffix(k, "_FILE") || isCredential(k) || strings.HasSuffix(k, SuffixLimitUpload) {
			continue
		}
		p := problems{env: k, errs: errs}
		if msg := notATarget(k, env); msg != "" {
			p.hidden(msg)
			continue
		}
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if !labels.ValidName(name) {
			p.bad(v, "the target name must be letters, digits, _ or -")
			continue
		}
		if err := CheckTargetURL(v); errors.Is(err, target.ErrSecretInURL) {
			msg := err.Error()
			if kind, ok := targets.Lookup(strings.TrimSpace(v)); ok {
				msg += " (for this target: " + kind.Secrets(k+"_") + ")"
			}
			p.hidden(msg)
			continue
		} else if err != nil {
			// A mistyped setting (..._SECRET_KEY) lands here.
			p.bad(v, err.Error()+" (a setting of a target is "+targetSettings("NAME_")+")")
			continue
		}
		cfg.Targets[name] = strings.TrimSpace(v)
	}
}

// notATarget says why the variable k, of the form DOCKER_BACKUP_TARGET_X, cannot define a
// target, or "" when it can: its name holds a word of a secret's (the value would be shown as the
// target's URL), or it is another target's variable with a suffix that is no setting
// (DOCKER_BACKUP_TARGET_OFFSITE_REGION beside DOCKER_BACKUP_TARGET_OFFSITE).
func notATarget(k string, env map[string]string) string {
	name := strings.TrimPrefix(k, EnvTarget+"_")
	if secretPart.MatchString(name) {
		return "a target's name must not have KEY, SECRET, TOKEN, PASS(WORD), CREDENTIAL or AUTH among its parts: such a variable may hold a secret, and a target's URL is shown" +
			" (a setting of a target is one of " + targetSettings("NAME_") + ", secrets also as _FILE forms)"
	}
	for other := range env {
		if other != k && strings.HasPrefix(k, other+"_") && strings.HasPrefix(other, EnvTarget+"_") && !strings.HasSuffix(other, "_FILE") && !isCredential(other) {
			return "not a setting of the target " + other + ": a target's settings are " + targetSettings(other+"_") + " (secrets also as _FILE forms) and " + other + SuffixLimitUpload + "; a target of its own needs a name that does not extend another's"
		}
	}
	return ""
}

// isCredential says whether k is one of a named target's own settings (its credentials and
// files, as each kind of target names them).
func isCredential(k string) bool {
	for _, s := range targets.Settings() {
		if strings.HasSuffix(k, "_"+s) {
			return true
		}
	}
	return false
}

// targetSettings lists a named target's settings, each after prefix.
func targetSettings(prefix string) string {
	var out []string
	for _, s := range targets.Settings() {
		out = append(out, prefix+s)
	}
	return strings.Join(out, ", ")
}

// CredentialsEnv is the environment prefix of a named target's own credentials:
// DOCKER_BACKUP_TARGET_OFFSITE_ACCESS_KEY_ID and so on (or _FILE) for S3, without which AWS_*
// apply; DOCKER_BACKUP_TARGET_OFFSITE_SFTP_KEY_FILE and _SFTP_KNOWN_HOSTS for SFTP, without
// which DOCKER_BACKUP_SFTP_* apply; DOCKER_BACKUP_TARGET_OFFSITE_SMB_PASSWORD (or _FILE) for
// SMB, without which DOCKER_BACKUP_SMB_PASSWORD applies.
func (c Config) CredentialsEnv(name string) string {
	if name == "default" {
		return ""
	}
	return EnvTarget + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// TargetNames lists the defined targets, sorted.
func (c Config) TargetNames() []string {
	names := make([]string, 0, len(c.Targets))
	for n := range c.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckTargetURL accepts what can name a target: an absolute directory path in the sidecar
// container, a file:// URL, or the URL of a kind of target this build knows.
func CheckTargetURL(v string) error {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return fmt.Errorf("give the target's directory or URL (%s)", targets.Supported())
	case strings.HasPrefix(v, "file:///"):
		return nil
	case strings.Contains(v, "://") || targets.IsURL(v):
		return targets.CheckURL(v)
	case !path.IsAbs(v):
		return fmt.Errorf("a target is an absolute directory path in the sidecar container, or a URL (%s)", targets.Supported())
	}
	return nil
}

// AddLabelTargets adds the targets defined by the sidecar's own labels
// (docker-backup.target.NAME=URL; URLs hold no secrets, credentials stay in the
// environment). A target defined in the environment wins over a label of the same name.
func (c *Config) AddLabelTargets(lbls map[string]string) error {
	defined, errs := labels.Targets(lbls)
	var msgs []string
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	for name, url := range defined {
		if err := CheckTargetURL(url); errors.Is(err, target.ErrSecretInURL) {
			msgs = append(msgs, fmt.Sprintf("label %s%s (value not shown): %v", labels.TargetOf, name, err))
			continue
		} else if err != nil {
			msgs = append(msgs, fmt.Sprintf("label %s%s=%q: %v", labels.TargetOf, name, url, err))
			continue
		}
		if c.Targets[name] == "" || (name == "default" && !c.defaultFromEnv) {
			c.Targets[name] = url
		}
	}
	if len(msgs) > 0 {
		sort.Strings(msgs)
		return fmt.Errorf("invalid target labels on the sidecar:\n  %s", strings.Join(msgs, "\n  "))
	}
	return nil
}

// notifySets reads DOCKER_BACKUP_NOTIFY_URLS (the default set) and
// DOCKER_BACKUP_NOTIFY_URLS_NAME (the set NAME), each also from a file with _FILE: URLs
// separated by spaces, commas or new lines. The URLs hold tokens: an error names the
// variable and the URL's position, never its text.
func notifySets(env map[string]string, errs *[]string) map[string][]string {
	sets := map[string][]string{}
	for k, v := range env {
		rest, ok := strings.CutPrefix(k, EnvNotifyURLs)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "_")) {
			continue
		}
		name := strings.TrimPrefix(rest, "_")
		if name == "FILE" || strings.HasSuffix(name, "_FILE") {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "FILE"), "_")
			b, err := os.ReadFile(strings.TrimSpace(v))
			if err != nil {
				*errs = append(*errs, fmt.Sprintf("%s=%q: %v", k, v, err))
				continue
			}
			v = string(b)
		}
		if name == "" {
			name = notify.DefaultSet
		}
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if !labels.ValidName(name) {
			*errs = append(*errs, fmt.Sprintf("%s: the set name must be letters, digits, _ or -", k))
			continue
		}
		for i, u := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
			if err := notify.CheckURL(u); err != nil {
				*errs = append(*errs, fmt.Sprintf("%s (value not shown), URL %d: %v", k, i+1, err))
				continue
			}
			sets[name] = append(sets[name], u)
		}
	}
	return sets
}
