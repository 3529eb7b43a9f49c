// Package strategy knows how to get data out of a container and back in: a Strategy writes a
// raw (uncompressed) backup stream and restores from one. Compression, checksums and storage
// are the engine's job, so every strategy works with every target.
package strategy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
)

// Strategy backs up and restores one kind of data.
type Strategy interface {
	// Name is the strategy's name as users write it ("postgres", "volume").
	Name() string
	// Extension is the file name extension of the raw stream ("sql", "tar").
	Extension() string
	// Backup writes the raw backup of c to w and returns what the manifest should record
	// about the source (tool versions, database, paths).
	Backup(ctx context.Context, c *containers.Container, w io.Writer) (Source, error)
	// Restore applies a raw stream produced by Backup to c.
	Restore(ctx context.Context, c *containers.Container, data Data) error
}

// Versioned is a database strategy that can tell the running server's version, so that a
// restore into another major version can be flagged.
type Versioned interface {
	ServerVersion(ctx context.Context, c *containers.Container) (string, error)
	Major(version string) string
}

// Data is a raw backup stream to restore, with what its manifest says about it.
type Data struct {
	io.Reader
	Size   int64  // exact length of the raw stream
	Source Source // what Backup recorded
}

// Source is what a strategy records about the data it backed up.
type Source map[string]string

// Options are a user's overrides; each strategy reads the fields that concern it.
type Options struct {
	// User and Database override what a database strategy reads from the container's env.
	User     string
	Database string
	// Password goes with User; it never comes from a label or a command line flag.
	Password string
	// Paths overrides the volume strategy's default of the container's mounts.
	Paths []string
	// Log receives progress messages (container stopped and started, fallbacks taken).
	Log *slog.Logger
}

// Names lists the strategies this build knows.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var constructors = map[string]func(Options) (Strategy, error){
	"postgres": func(o Options) (Strategy, error) { return &Postgres{User: o.User, Database: o.Database}, nil },
	"volume":   func(o Options) (Strategy, error) { return NewVolume(o.Paths) },
	"mysql": func(o Options) (Strategy, error) {
		return &MySQL{User: o.User, Password: o.Password, Databases: splitList(o.Database)}, nil
	},
	"redis":  func(o Options) (Strategy, error) { return &Redis{Password: o.Password, Log: o.Log}, nil },
	"sqlite": func(o Options) (Strategy, error) { return &SQLite{Path: o.Database, Log: o.Log}, nil },
	"mongo":  func(o Options) (Strategy, error) { return &Mongo{User: o.User, Password: o.Password}, nil },
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

// New returns the named strategy configured with opts.
func New(name string, opts Options) (Strategy, error) {
	if canonical, ok := aliases[name]; ok {
		name = canonical
	}
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q: use one of %s", name, strings.Join(Names(), ", "))
	}
	return mk(opts)
}

// StepError tells which step of a backup or restore failed, for which service.
type StepError struct {
	Target string // the container, as containers.Container.String names it
	Step   string // "dump", "copy", "restore", ...
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s of %s failed: %v", e.Step, e.Target, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

func stepErr(c *containers.Container, step string, err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Target: c.String(), Step: step, Err: err}
}
