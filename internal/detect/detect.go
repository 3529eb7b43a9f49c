// Package detect proposes backup strategies for a container and says why: an explicit label
// first, then the image name and environment, then its mounts for the volume strategy.
package detect

import (
	"fmt"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Labels read by detection.
const (
	// LabelStrategy names a service's strategy explicitly.
	LabelStrategy = "docker-backup.strategy"
	// LabelEnable set to "false" excludes a service.
	LabelEnable = "docker-backup.enable"
	// LabelSidecar marks the docker-backup sidecar's own image, which is never backed up.
	LabelSidecar = "docker-backup.sidecar"
)

// Candidate is one strategy that fits a container, with the evidence for it.
type Candidate struct {
	Strategy string `json:"strategy"`
	Reason   string `json:"reason"`
}

// imageFamilies maps image repository names to the database strategy they run.
var imageFamilies = map[string]string{
	"postgres":       "postgres",
	"postgresql":     "postgres",
	"postgis":        "postgres",
	"timescaledb":    "postgres",
	"timescaledb-ha": "postgres",
	"pgvector":       "postgres",
}

// lookAlikes are images whose names contain a database's name but which hold no database.
var lookAlikes = []string{"postgrest", "exporter", "pgadmin", "adminer", "pgbouncer", "pgpool", "pghero", "pgweb"}

// envHints are environment variables the official images set or read.
var envHints = map[string]string{
	"PG_MAJOR":          "postgres",
	"PG_VERSION":        "postgres",
	"POSTGRES_PASSWORD": "postgres",
	"POSTGRES_DB":       "postgres",
}

// Excluded reports why c is not to be backed up at all, or "" when it may be.
func Excluded(c *containers.Container) string {
	switch {
	case c.Labels[LabelSidecar] == "true":
		return "the docker-backup sidecar itself"
	case c.Labels[LabelEnable] == "false":
		return "label " + LabelEnable + "=false"
	}
	return ""
}

// Strategies returns the strategies that fit c, the most specific first; none for an
// excluded container.
func Strategies(c *containers.Container) []Candidate {
	var out []Candidate
	if Excluded(c) != "" {
		return nil
	}
	add := func(s, why string) {
		for _, have := range out {
			if have.Strategy == s {
				return
			}
		}
		out = append(out, Candidate{s, why})
	}
	if s := c.Labels[LabelStrategy]; s != "" {
		add(s, fmt.Sprintf("label %s=%s", LabelStrategy, s))
	}
	repo := Repository(c.Image)
	if !isLookAlike(repo) {
		for name, s := range imageFamilies {
			if repo == name || strings.HasPrefix(repo, name+"-") || strings.HasSuffix(repo, "/"+name) {
				add(s, fmt.Sprintf("image %q", c.Image))
			}
		}
		if repo != "" && strings.Contains(lastPart(repo), "postgres") && !isLookAlike(repo) {
			add("postgres", fmt.Sprintf("image %q", c.Image))
		}
		for _, kv := range c.Env {
			k, _, _ := strings.Cut(kv, "=")
			if s, ok := envHints[k]; ok {
				add(s, fmt.Sprintf("environment variable %s", k))
			}
		}
	}
	if paths := strategy.DefaultPaths(c); len(paths) > 0 {
		add("volume", "mounts "+strings.Join(paths, ", "))
	}
	return out
}

// Supports reports whether the named strategy fits c.
func Supports(c *containers.Container, name string) bool {
	if name == "volume" {
		return true // any path of any container can be archived
	}
	for _, cand := range Strategies(c) {
		if cand.Strategy == name {
			return true
		}
	}
	return false
}

// Repository returns an image reference's repository path without registry host, tag or
// digest, lowercased: "ghcr.io/org/postgres:16@sha256:..." gives "org/postgres".
func Repository(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		parts = parts[1:]
	}
	if len(parts) > 1 && parts[0] == "library" {
		parts = parts[1:]
	}
	return strings.ToLower(strings.Join(parts, "/"))
}

func lastPart(repo string) string {
	return repo[strings.LastIndex(repo, "/")+1:]
}

func isLookAlike(repo string) bool {
	name := lastPart(repo)
	for _, l := range lookAlikes {
		if strings.Contains(name, l) {
			return true
		}
	}
	return false
}
