// Package strategies is the registry of the strategies this build knows: New makes one by its
// name or an alias, Names lists them. Adding a kind of data is a folder under
// internal/strategy and a line here.
package strategies

import (
	"fmt"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/mongo"
	"github.com/docker-backup/docker-backup/internal/strategy/mysql"
	"github.com/docker-backup/docker-backup/internal/strategy/postgres"
	"github.com/docker-backup/docker-backup/internal/strategy/redis"
	"github.com/docker-backup/docker-backup/internal/strategy/sqlite"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
)

// Names lists the strategies this build knows.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var constructors = map[string]func(strategy.Options) (strategy.Strategy, error){
	"postgres": func(o strategy.Options) (strategy.Strategy, error) {
		return &postgres.Strategy{User: o.User, Database: o.Database}, nil
	},
	"volume": func(o strategy.Options) (strategy.Strategy, error) {
		v, err := volume.New(o.Paths, o.Exclude)
		if err != nil {
			return nil, err
		}
		v.NoStop, v.Log, v.Worker, v.RequireWorker = o.NoStop, o.Log, o.Worker, o.RequireWorker
		return v, nil
	},
	"mysql": func(o strategy.Options) (strategy.Strategy, error) {
		return &mysql.Strategy{User: o.User, Password: o.Password, Databases: splitList(o.Database)}, nil
	},
	"redis": func(o strategy.Options) (strategy.Strategy, error) {
		return &redis.Strategy{Password: o.Password, Log: o.Log}, nil
	},
	"sqlite": func(o strategy.Options) (strategy.Strategy, error) {
		return &sqlite.Strategy{Path: o.Database, Log: o.Log}, nil
	},
	"mongo": func(o strategy.Options) (strategy.Strategy, error) {
		return &mongo.Strategy{User: o.User, Password: o.Password}, nil
	},
}

// aliases are other names users write for a strategy.
var aliases = map[string]string{"mariadb": "mysql", "postgresql": "postgres", "valkey": "redis", "mongodb": "mongo", "sqlite3": "sqlite"}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Canonical returns the strategy's own name for a name or alias ("mariadb" gives "mysql"),
// or name itself when it is unknown.
func Canonical(name string) string {
	if c, ok := aliases[name]; ok {
		return c
	}
	return name
}

// New returns the named strategy configured with opts.
func New(name string, opts strategy.Options) (strategy.Strategy, error) {
	if canonical, ok := aliases[name]; ok {
		name = canonical
	}
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q: use one of %s", name, strings.Join(Names(), ", "))
	}
	if len(opts.Exclude) > 0 && name != "volume" {
		return nil, fmt.Errorf("exclusions (--exclude, the label docker-backup.exclude: %s) apply to the volume strategy only, which backs up files; the %s strategy backs up the whole database", strings.Join(opts.Exclude, ", "), name)
	}
	return mk(opts)
}
