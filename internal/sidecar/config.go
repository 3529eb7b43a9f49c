// Package sidecar is the long-running docker-backup service: it reads the docker-backup.*
// labels of a compose project's services, keeps their jobs scheduled as the labels change
// (Docker events plus a periodic resync), runs them into named targets, records every run in
// a SQLite catalog, prunes by retention, recovers from crashes, and answers the plugin over
// a Unix socket.
package sidecar

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
)

// Config is the sidecar's configuration, read from its environment.
type Config struct {
	// Project is the compose project whose services are managed; empty with AllProjects.
	Project     string
	AllProjects bool
	// Targets maps target names to URLs (a directory or s3://...). "default" always exists.
	Targets map[string]string
	// Prefix goes before every key on every target; nil picks the default: the Docker host's
	// name on S3 targets (many hosts share a bucket), nothing on local ones.
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
	// CatalogBackup is the schedule of the catalog's own backup to the default target; empty: off.
	CatalogBackup string

	defaultFromEnv bool // DOCKER_BACKUP_TARGET was set
}

// Environment variables the sidecar reads.
const (
	EnvProject         = "DOCKER_BACKUP_PROJECT"
	EnvScope           = "DOCKER_BACKUP_SCOPE"
	EnvTarget          = "DOCKER_BACKUP_TARGET"
	EnvPrefix          = "DOCKER_BACKUP_PREFIX"
	EnvState           = "DOCKER_BACKUP_STATE"
	EnvListen          = "DOCKER_BACKUP_LISTEN"
	EnvMaxConcurrent   = "DOCKER_BACKUP_MAX_CONCURRENT"
	EnvTimeout         = "DOCKER_BACKUP_TIMEOUT"
	EnvJitter          = "DOCKER_BACKUP_JITTER"
	EnvResync          = "DOCKER_BACKUP_RESYNC"
	EnvRetention       = "DOCKER_BACKUP_RETENTION"
	EnvSchedule        = "DOCKER_BACKUP_SCHEDULE"
	EnvCompression     = "DOCKER_BACKUP_COMPRESSION"
	EnvCatalogSchedule = "DOCKER_BACKUP_CATALOG_SCHEDULE"
	// EnvTarget + "_" + NAME defines the target NAME (lowercase, "_" read as "-").
)

var targetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ConfigFromEnv reads the configuration from KEY=VALUE pairs (os.Environ()). Every invalid
// value is reported, naming the variable, the value and what is allowed.
func ConfigFromEnv(environ []string) (Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	get := func(k, def string) string {
		if v, ok := env[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	cfg := Config{
		Project:       get(EnvProject, ""),
		Targets:       map[string]string{"default": get(EnvTarget, "/backups")},
		StateDir:      get(EnvState, "/var/lib/docker-backup"),
		Listen:        get(EnvListen, ":9090"),
		Location:      time.Local,
		CatalogBackup: get(EnvCatalogSchedule, "@daily"),
	}
	_, cfg.defaultFromEnv = env[EnvTarget]
	var errs []string
	bad := func(k, v, allowed string) { errs = append(errs, fmt.Sprintf("%s=%q: %s", k, v, allowed)) }

	switch scope := get(EnvScope, "project"); scope {
	case "project":
	case "all":
		cfg.AllProjects = true
	default:
		bad(EnvScope, scope, "must be project (the sidecar's own compose project, the default) or all (every project on the host)")
	}
	if v, ok := env[EnvPrefix]; ok {
		p := strings.Trim(strings.TrimSpace(v), "/")
		cfg.Prefix = &p
	}
	for k, v := range env {
		name, ok := strings.CutPrefix(k, EnvTarget+"_")
		if !ok || strings.HasSuffix(k, "_FILE") || isCredential(k) {
			continue
		}
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if !targetName.MatchString(name) {
			bad(k, v, "the target name must be letters, digits, _ or -")
			continue
		}
		if strings.TrimSpace(v) == "" {
			bad(k, v, "give the target's directory or s3:// URL")
			continue
		}
		cfg.Targets[name] = strings.TrimSpace(v)
	}
	ints := []struct {
		key string
		dst *int
		def int
	}{{EnvMaxConcurrent, &cfg.MaxConcurrent, 1}}
	for _, i := range ints {
		v := get(i.key, strconv.Itoa(i.def))
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad(i.key, v, "must be a whole number, 1 or more")
		}
		*i.dst = n
	}
	durations := []struct {
		key string
		dst *time.Duration
		def string
	}{{EnvTimeout, &cfg.Timeout, "6h"}, {EnvJitter, &cfg.Jitter, "0s"}, {EnvResync, &cfg.Resync, "5m"}}
	for _, d := range durations {
		v := get(d.key, d.def)
		x, err := time.ParseDuration(v)
		if err != nil || x < 0 {
			bad(d.key, v, "must be a duration like 30s, 15m or 6h")
		}
		*d.dst = x
	}
	if cfg.Resync == 0 {
		bad(EnvResync, "0", "must be more than 0: it is the safety net behind the events stream")
	}
	if tz := get("TZ", ""); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			bad("TZ", tz, "not a time zone name like Europe/Berlin or UTC")
		} else {
			cfg.Location = loc
		}
	}
	if v := get(EnvRetention, ""); v != "" {
		p, err := retention.Parse(v)
		if err != nil {
			bad(EnvRetention, v, err.Error())
		}
		cfg.DefaultRetention = p
	}
	if v := get(EnvSchedule, ""); v != "" {
		if _, err := schedule.Parse(v); err != nil {
			bad(EnvSchedule, v, err.Error())
		}
		cfg.DefaultSchedule = v
	}
	if v := cfg.CatalogBackup; v == "off" || v == "none" {
		cfg.CatalogBackup = ""
	} else if _, err := schedule.Parse(v); err != nil {
		bad(EnvCatalogSchedule, v, err.Error()+` (or "off")`)
	}
	comp, err := artifact.ParseCompression(get(EnvCompression, string(artifact.Zstd)))
	if err != nil {
		bad(EnvCompression, get(EnvCompression, ""), err.Error())
	}
	cfg.Compression = comp
	if len(errs) > 0 {
		sort.Strings(errs)
		return cfg, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return cfg, nil
}

// credentialSuffixes end the variables that hold a named target's S3 credentials.
var credentialSuffixes = []string{"_ACCESS_KEY_ID", "_SECRET_ACCESS_KEY", "_SESSION_TOKEN"}

func isCredential(k string) bool {
	for _, s := range credentialSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// CredentialsEnv is the environment prefix of a named target's own S3 credentials:
// DOCKER_BACKUP_TARGET_OFFSITE_ACCESS_KEY_ID and so on (or _FILE). Without them, AWS_* apply.
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

// LabelTargetPrefix starts the sidecar's own labels that define targets:
// docker-backup.target.NAME=URL (URLs hold no secrets; credentials stay in the environment).
const LabelTargetPrefix = "docker-backup.target."

// AddLabelTargets adds the targets defined by the sidecar's own labels. A target defined in
// the environment wins over a label of the same name.
func (c *Config) AddLabelTargets(lbls map[string]string) error {
	var errs []string
	for k, v := range lbls {
		name, ok := strings.CutPrefix(k, LabelTargetPrefix)
		if !ok {
			continue
		}
		switch {
		case !targetName.MatchString(name):
			errs = append(errs, fmt.Sprintf("label %s=%q: the target name must be lowercase letters, digits, _ or -", k, v))
		case strings.TrimSpace(v) == "":
			errs = append(errs, fmt.Sprintf("label %s=%q: give the target's directory or s3:// URL", k, v))
		case c.Targets[name] == "" || (name == "default" && !c.defaultFromEnv):
			c.Targets[name] = strings.TrimSpace(v)
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("invalid target labels on the sidecar:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}
