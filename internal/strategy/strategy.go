// Package strategy knows how to get data out of a container and back in: a Strategy writes a
// raw (uncompressed) backup stream and restores from one. Compression, checksums and storage
// are the engine's job, so every strategy works with every target.
package strategy

import (
	"context"
	"fmt"
	"io"
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
	// Restore applies a raw stream produced by Backup to c. source is what Backup recorded.
	Restore(ctx context.Context, c *containers.Container, r io.Reader, source Source) error
}

// Source is what a strategy records about the data it backed up.
type Source map[string]string

// Options are a user's overrides; each strategy reads the fields that concern it.
type Options struct {
	// User and Database override what a database strategy reads from the container's env.
	User     string
	Database string
	// Paths overrides the volume strategy's default of the container's mounts.
	Paths []string
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
}

// New returns the named strategy configured with opts.
func New(name string, opts Options) (Strategy, error) {
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
