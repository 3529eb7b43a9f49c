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
	"runtime"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
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
	// envSigningKey names the file of the key manifests are signed and verified with.
	envSigningKey = "DOCKER_BACKUP_SIGNING_KEY_FILE"
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

// findService resolves SERVICE within a project, or a container by name or ID; without a
// project, the project named after the current directory is tried too, as compose names it.
func findService(ctx context.Context, api containers.API, project, service string) (*containers.Container, error) {
	guess := ""
	if dir, err := os.Getwd(); err == nil {
		guess = composeProjectName(filepath.Base(dir))
	}
	return plan.Find(ctx, api, project, service, guess)
}

var notProjectChar = regexp.MustCompile(`[^a-z0-9_-]`)

// composeProjectName derives a project name from a directory name as docker compose does.
func composeProjectName(dir string) string {
	return strings.TrimLeft(notProjectChar.ReplaceAllString(strings.ToLower(dir), ""), "_-")
}

// findSidecar returns the running sidecar of project (or of the only project that has one).
func findSidecar(ctx context.Context, api containers.API, project string) (*control.Client, error) {
	return control.Find(ctx, api, project)
}

// sidecarOfService returns the sidecar of the project the service is in (project, or the
// service's own when project is empty); nil when that project has none.
func sidecarOfService(ctx context.Context, api containers.API, project, service string) (*control.Client, error) {
	if project == "" {
		c, err := containers.Find(ctx, api, "", service)
		if err != nil || c.Project == "" {
			return nil, nil // the direct path reports what is wrong
		}
		project = c.Project
	}
	return findSidecar(ctx, api, project)
}

// requireSidecar is findSidecar that fails when there is none.
func requireSidecar(ctx context.Context, api containers.API, project string) (*control.Client, error) {
	sc, err := findSidecar(ctx, api, project)
	if err == nil && sc == nil {
		where := "on this Docker host"
		if project != "" {
			where = "in compose project " + project
		}
		err = fmt.Errorf("no running docker-backup sidecar %s (add the sidecar service to the project, see README)", where)
	}
	return sc, err
}

// signingKeyFile is where the plugin's signing key is: $DOCKER_BACKUP_SIGNING_KEY_FILE, else
// docker-backup/signing.key in the docker CLI's configuration directory.
func signingKeyFile() (file string, given bool) {
	if f := os.Getenv(envSigningKey); f != "" {
		return f, true
	}
	return filepath.Join(config.Dir(), "docker-backup", "signing.key"), false
}

// signer returns the key backups are signed with, made on first use.
func signer(w io.Writer) (*artifact.SigningKey, error) {
	file, given := signingKeyFile()
	if given {
		return artifact.LoadSigningKey(file)
	}
	k, created, err := artifact.LoadOrCreateSigningKey(file)
	if err != nil {
		return nil, fmt.Errorf("the signing key: %w (name another file with $%s)", err, envSigningKey)
	}
	if created {
		fmt.Fprintf(w, "Made a signing key for your backups in %s (key %s). Restores check it: keep a copy, or restore elsewhere with $%s.\n", file, k.ID(), envSigningKey)
	}
	return k, nil
}

// verifier returns the key restores check signatures with; nil when there is none yet.
func verifier() (*artifact.SigningKey, error) {
	file, given := signingKeyFile()
	k, err := artifact.LoadSigningKey(file)
	if err != nil && !given && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return k, err
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
	var attrs []string
	for _, a := range h.attrs {
		attrs = append(attrs, a.Key+"="+a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a.Key+"="+a.Value.String())
		return true
	})
	msg := r.Message
	if len(attrs) > 0 {
		msg += " (" + strings.Join(attrs, ", ") + ")"
	}
	_, err := io.WriteString(h.w, humanLine(strings.ToLower(r.Level.String()), msg)+"\n")
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// humanLine writes a log message for people, the plugin's own and the sidecar's alike:
// capitalised, warnings and errors marked.
func humanLine(level, msg string) string {
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if level == "warn" || level == "error" {
		msg = level + ": " + msg
	}
	return msg
}

// eventLine formats a sidecar log event like the plugin's own log lines.
func eventLine(ev control.Event) string { return humanLine(ev.Level, ev.Message) }

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

// volumeWorker returns what volume backups and restores work beside the data with — this
// plugin's own binary as a one-file image (else the sidecar image of this release), and for
// backups in auto mode this process itself when the Engine's volumes are on this host — as
// DOCKER_BACKUP_WORKER says (auto, on, off), and whether a worker is required.
func volumeWorker(api client.APIClient, log *slog.Logger) (strategy.Worker, bool, error) {
	mode, err := worker.ParseMode(os.Getenv(worker.EnvMode))
	if err != nil {
		return nil, false, err
	}
	if mode == worker.ModeOff {
		return nil, false, nil
	}
	rel, err := worker.ThisRelease()
	if err != nil {
		return nil, false, err
	}
	r := &worker.Runner{Engine: api, Image: worker.PluginImage(api, rel, log), Owner: scratch.ProcessOwner(), Log: log}
	if runtime.GOOS == "linux" {
		// A socket beside the engine; elsewhere (Docker Desktop's VM) the attach stream.
		r.Channel = func(context.Context) (*worker.Channel, error) { return worker.HostChannel(), nil }
	}
	if mode == worker.ModeAuto {
		r.Local = &worker.Local{Engine: api}
	}
	return r, mode == worker.ModeOn, nil
}
