// Package detect proposes backup strategies for a container and says why: an explicit label
// first, then the image name and environment, then its mounts for the volume strategy.
package detect

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
)

// Candidate is one strategy that fits a container, with the evidence for it.
type Candidate struct {
	Strategy string `json:"strategy"`
	Reason   string `json:"reason"`
}

// imageFamilies maps image repository names to the database strategy they run.
var imageFamilies = map[string]string{
	"postgres": "postgres", "postgresql": "postgres", "postgis": "postgres", "timescaledb": "postgres",
	"timescaledb-ha": "postgres", "pgvector": "postgres",
	"mysql": "mysql", "mariadb": "mysql", "percona": "mysql", "percona-server": "mysql", "mysql-server": "mysql",
	"mongo": "mongo", "mongodb": "mongo", "mongodb-community-server": "mongo", "mongodb-enterprise-server": "mongo",
	"redis": "redis", "valkey": "redis", "keydb": "redis", "redis-stack-server": "redis", "redis-stack": "redis",
}

// lookAlikes are images whose names contain a database's name but which hold no database.
var lookAlikes = []string{"postgrest", "exporter", "pgadmin", "adminer", "pgbouncer", "pgpool", "pghero", "pgweb",
	"mongo-express", "mongoku", "redis-commander", "redisinsight", "phpmyadmin", "proxysql", "mysql-router", "sentinel"}

// envHints are variables the official images set themselves; variables a user sets (like
// POSTGRES_PASSWORD on an app that connects to a database) are no evidence.
var envHints = map[string]string{
	"PG_MAJOR": "postgres", "PG_VERSION": "postgres",
	"MARIADB_VERSION": "mysql", "MARIADB_MAJOR": "mysql", "MYSQL_MAJOR": "mysql", "MYSQL_VERSION": "mysql",
	"MONGO_VERSION": "mongo", "MONGO_MAJOR": "mongo",
	"REDIS_VERSION": "redis",
}

// Strategies returns the strategies that fit c, the most specific first; none for an
// excluded container.
func Strategies(c *containers.Container) []Candidate {
	var out []Candidate
	if labels.Excluded(c.Labels) != "" {
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
	if s := c.Labels[labels.Strategy]; s != "" {
		add(s, fmt.Sprintf("label %s=%s", labels.Strategy, s))
	}
	repo := Repository(c.Image)
	if !isLookAlike(repo) {
		if s := imageFamily(lastPart(repo)); s != "" {
			add(s, fmt.Sprintf("image %q", c.Image))
		}
		for _, kv := range c.Env {
			k, _, _ := strings.Cut(kv, "=")
			if s, ok := envHints[k]; ok {
				add(s, fmt.Sprintf("image environment %s", k))
			}
		}
	}
	if paths := volume.DefaultPaths(c); len(paths) > 0 {
		add("volume", "mounts "+strings.Join(paths, ", "))
	}
	return out
}

// imageFamily returns the strategy of an image name ("bitnami/postgresql" gives postgres).
func imageFamily(name string) string {
	if s, ok := imageFamilies[name]; ok {
		return s
	}
	for family, s := range imageFamilies {
		if strings.HasPrefix(name, family+"-") {
			return s
		}
	}
	if strings.Contains(name, "postgres") {
		return "postgres"
	}
	return ""
}

// Supports reports whether the named strategy fits c, probing it if needed.
func Supports(ctx context.Context, c *containers.Container, name string) bool {
	if name == "volume" || name == "sqlite" {
		return true // any container can hold files and SQLite databases
	}
	for _, cand := range All(ctx, c) {
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
