package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// Environment variables the plugin reads.
const (
	// envTarget sets a default for --to / --from.
	envTarget = "DOCKER_BACKUP_TARGET"
	// envLimitUpload is --limit-upload's default (the sidecar's setting of the same name).
	envLimitUpload = "DOCKER_BACKUP_LIMIT_UPLOAD"
	// envPassword overrides the database password read from the container; a password is
	// never taken from a flag, where it would show in the process list.
	envPassword = "DOCKER_BACKUP_PASSWORD"
)

// strategyNames lists the strategies for flag help and errors.
const strategyNames = "postgres, mysql (mariadb), redis, mongo, sqlite, volume"

// dockerAPI returns the CLI's Engine client (which honours --context, DOCKER_HOST and -H)
// after checking that the Engine answers, with an error that says what to do if not.
func dockerAPI(ctx context.Context, dockerCli command.Cli) (client.APIClient, error) {
	api := dockerCli.Client()
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := api.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, fmt.Errorf("cannot reach the Docker engine at %s: %v\nIs dockerd running, and are DOCKER_HOST, --host and --context (now %q) right?",
			api.DaemonHost(), rootCause(err), dockerCli.CurrentContext())
	}
	return api, nil
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// projectFlag adds --project, defaulting to COMPOSE_PROJECT_NAME.
func projectFlag(flags *pflag.FlagSet, p *string) {
	flags.StringVarP(p, "project", "p", os.Getenv("COMPOSE_PROJECT_NAME"),
		"Compose project name (default: $COMPOSE_PROJECT_NAME, else the one project that has the service)")
}

// noSidecarFlag adds --no-sidecar.
func noSidecarFlag(flags *pflag.FlagSet, p *bool) {
	flags.BoolVar(p, "no-sidecar", false, "Work directly on the target even when the project has a sidecar")
}

// clock is a docker CLI that tells the time itself (a test's, for output that does not
// change from one run to the next).
type clock interface{ Now() time.Time }

// now is the time the commands print ages against: the docker CLI's, when it tells one.
func now(dockerCli command.Cli) time.Time {
	if c, ok := dockerCli.(clock); ok {
		return c.Now()
	}
	return time.Now()
}

// ended is how a command ends on a failure, as package outcome words it: an exit status other
// than 1 goes to the docker CLI with the message.
func ended(exit int, err error) error {
	if exit == outcome.ExitFailed {
		return err
	}
	return cli.StatusError{StatusCode: exit, Status: err.Error()}
}
