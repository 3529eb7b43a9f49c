// Package mongo is the MongoDB strategy: mongodump --archive and mongorestore --drop in the
// database container; verify counts each collection's documents in the archive against
// countDocuments.
package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// Strategy dumps every database with `mongodump --archive` inside the database container (no
// --gzip: the pipeline compresses) and restores with `mongorestore --archive --drop`.
// Credentials come from MONGO_INITDB_ROOT_USERNAME / MONGO_INITDB_ROOT_PASSWORD (or their
// _FILE forms) and authenticate against the admin database. The password never reaches a
// command line: it is written to a 0600 YAML file passed with --config, and removed after.
type Strategy struct {
	User     string
	Password string
}

// Name returns "mongo".
func (m *Strategy) Name() string { return "mongo" }

// Extension returns "archive".
func (m *Strategy) Extension() string { return "archive" }

// mongoConfigDir is where the credentials file is written in the container, named
// mongoConfigPrefix + random + ".yaml".
const (
	mongoConfigDir    = "/tmp"
	mongoConfigPrefix = ".docker-backup-mongo-"
)

func (m *Strategy) credentials(ctx context.Context, c *containers.Container) (user, password string, err error) {
	user, password = m.User, m.Password
	if user == "" {
		if user, _, err = c.Secret(ctx, "MONGO_INITDB_ROOT_USERNAME"); err != nil {
			return "", "", err
		}
		if password, _, err = c.Secret(ctx, "MONGO_INITDB_ROOT_PASSWORD"); err != nil {
			return "", "", err
		}
	}
	return user, password, nil
}

// withCredentials runs fn with the tool's arguments for authentication; a password is put
// in a config file for the duration of fn.
func (m *Strategy) withCredentials(ctx context.Context, c *containers.Container, fn func(args []string) error) error {
	user, password, err := m.credentials(ctx, c)
	if err != nil {
		return err
	}
	if user == "" {
		return fn(nil)
	}
	args := []string{"--username", user, "--authenticationDatabase", "admin"}
	if password == "" {
		return fn(args)
	}
	// A file a crash left behind (the process killed between writing and removing it) is
	// removed by the next run: files older than a minute are no run's.
	_ = c.Exec(ctx, containers.ExecSpec{Cmd: []string{"find", mongoConfigDir, "-maxdepth", "1", "-name", mongoConfigPrefix + "*.yaml", "-mmin", "+1", "-delete"}})
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := mongoConfigPrefix + hex.EncodeToString(b) + ".yaml"
	body := "password: '" + strings.ReplaceAll(password, "'", "''") + "'\n"
	// The tools run as the container's user: the file is theirs, and only theirs.
	uid, gid, err := c.ExecUser(ctx)
	if err != nil {
		return err
	}
	if err := c.WriteFiles(ctx, mongoConfigDir, containers.File{Name: name, Content: strings.NewReader(body), Size: int64(len(body)), Mode: 0o600, UID: uid, GID: gid}); err != nil {
		return fmt.Errorf("writing the credentials file: %w", err)
	}
	file := mongoConfigDir + "/" + name
	defer func() { _ = c.RemoveTemp(ctx, file) }()
	return fn(append(args, "--config", file))
}

// Backup streams mongodump's archive to w.
func (m *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	if !c.Running {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("the container is not running: mongodump needs the server up"))
	}
	src := strategy.Source{}
	if v, err := c.Output(ctx, "mongodump", "--version"); err == nil {
		src["mongodump_version"] = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(v, "\n", 2)[0], "mongodump version:"))
	} else {
		return nil, strategy.StepErr(c, "dump", fmt.Errorf("mongodump is not usable in the container: %w", err))
	}
	err := m.withCredentials(ctx, c, func(auth []string) error {
		// Not --quiet: in mongo-tools 100.x it also hides the "Failed: <reason>" line.
		return c.Exec(ctx, containers.ExecSpec{Cmd: append([]string{"mongodump", "--archive"}, auth...), Stdout: w})
	})
	if err != nil {
		return nil, strategy.StepErr(c, "dump", err)
	}
	return src, nil
}

// Interrupted says what a cut mongorestore leaves: each collection is dropped and reloaded
// on its own.
func (m *Strategy) Interrupted() string {
	return "mongorestore replaces one collection after another: the collections before the interruption are restored, the one in progress may be partly loaded, the rest are as they were; restore again"
}

// Restore replaces the dumped collections with mongorestore --drop.
func (m *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	if !c.Running {
		return strategy.StepErr(c, "restore", fmt.Errorf("the container is not running: mongorestore needs the server up"))
	}
	err := m.withCredentials(ctx, c, func(auth []string) error {
		return c.Exec(ctx, containers.ExecSpec{Cmd: append([]string{"mongorestore", "--archive", "--drop"}, auth...), Stdin: data})
	})
	return strategy.StepErr(c, "restore", err)
}
