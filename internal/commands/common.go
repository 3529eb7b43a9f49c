package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
)

// Environment variables the plugin reads.
const (
	// envTarget sets a default for --to / --from.
	envTarget = "DOCKER_BACKUP_TARGET"
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

// findService resolves SERVICE within a project, or a container by name or ID.
func findService(ctx context.Context, api containers.API, project, service string) (*containers.Container, error) {
	c, err := containers.Resolve(ctx, api, project, service)
	if err != nil && errors.Is(err, containers.ErrNotFound) && project == "" {
		if dir, derr := os.Getwd(); derr == nil {
			if guess := composeProjectName(filepath.Base(dir)); guess != "" {
				if c2, err2 := containers.Find(ctx, api, guess, service); err2 == nil {
					return c2, nil
				}
			}
		}
	}
	return c, err
}

var notProjectChar = regexp.MustCompile(`[^a-z0-9_-]`)

// composeProjectName derives a project name from a directory name as docker compose does.
func composeProjectName(dir string) string {
	return strings.TrimLeft(notProjectChar.ReplaceAllString(strings.ToLower(dir), ""), "_-")
}

// logger writes the engine's progress messages to w as plain lines:
// "Stopping container (container=shop-db-1)".
func logger(w io.Writer) *slog.Logger {
	return slog.New(&lineHandler{w: w})
}

// lineHandler is a slog.Handler for people: the message, capitalised, then its attributes.
type lineHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if r.Level >= slog.LevelWarn {
		b.WriteString(strings.ToLower(r.Level.String()) + ": ")
	}
	msg := r.Message
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	b.WriteString(msg)
	var attrs []string
	add := func(a slog.Attr) bool {
		attrs = append(attrs, a.Key+"="+a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if len(attrs) > 0 {
		b.WriteString(" (" + strings.Join(attrs, ", ") + ")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// progress returns a callback drawing a bytes/rate line on stderr when it is a terminal,
// and a function that clears it.
func progress(dockerCli command.Cli, what string) (func(int64), func()) {
	if !dockerCli.Err().IsTerminal() {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(dockerCli.Err()),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(250*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
	var last int64
	return func(n int64) {
			_ = bar.Add64(n - last)
			last = n
		}, func() {
			_ = bar.Finish()
		}
}

func humanBytes(n int64) string { return units.BytesSize(float64(n)) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return units.BytesSize(float64(n)/d.Seconds()) + "/s"
}
