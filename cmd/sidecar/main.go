// Command sidecar is the docker-backup service that runs inside a compose project: it
// schedules the backups its services' labels ask for, keeps a catalog of runs, prunes by
// retention and answers the docker-backup plugin. It must not import github.com/docker/cli,
// to stay a small static binary.
//
//	sidecar                         run the service
//	sidecar healthcheck             the image's HEALTHCHECK: is the service ready?
//	sidecar ctl METHOD PATH [BODY]  a request to the running service (used by the plugin via docker exec)
//	sidecar version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // the image is FROM scratch: TZ needs the zone database built in

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/metrics"
	"github.com/docker-backup/docker-backup/internal/sidecar"
	"github.com/docker-backup/docker-backup/internal/sidecar/config"
	"github.com/docker-backup/docker-backup/internal/sidecar/server"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

func main() {
	level := slog.LevelInfo
	if os.Getenv("DOCKER_BACKUP_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(os.Args[1:], log); err != nil {
		if len(os.Args) > 1 && os.Args[1] == "ctl" {
			fmt.Fprintln(os.Stderr, err)
		} else {
			log.Error("sidecar failed", "error", err)
		}
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	if first(args) == worker.Command {
		// A worker container (see package worker), started by a running sidecar.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := agent.Serve(ctx, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	cfg, cfgErr := config.FromEnv(os.Environ())
	switch first(args) {
	case "version":
		return printVersion(args[1:], os.Stdout)
	case "healthcheck":
		return healthcheck(cfg.Listen)
	case "ctl":
		return ctl(cfg.StateDir, args[1:], os.Stdout)
	case "", "serve":
	default:
		return fmt.Errorf("unknown command %q: use serve (the default), healthcheck, ctl or version", args[0])
	}
	if cfgErr != nil {
		return cfgErr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	api, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("creating the Docker client: %w", err)
	}
	defer api.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = api.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true})
	cancel()
	if err != nil {
		return engineUnreachable(api.DaemonHost(), err)
	}
	engine, err := withSwarmManager(ctx, api, cfg, log)
	if err != nil {
		return err
	}
	var d *sidecar.Daemon
	m := metrics.New(func(ctx context.Context) (*control.Status, error) { return d.Status(ctx) },
		func(ctx context.Context) error { return d.CatalogHealthy(ctx) })
	d, err = sidecar.New(ctx, cfg, sidecar.Options{API: engine, Log: log, Recorder: m})
	if err != nil {
		return err
	}
	defer d.Close()
	log.Info("sidecar started", "version", version.Version, "commit", version.Commit, "docker", api.DaemonHost(), "listen", cfg.Listen)

	errc := make(chan error, 3)
	go func() { errc <- server.ServeControl(ctx, d.ControlSocket(), d, log) }()
	go func() {
		errc <- server.ServePublic(ctx, cfg.Listen, d.Ready, map[string]http.Handler{"GET /metrics": m.Handler()})
	}()
	go func() { errc <- d.Run(ctx) }()
	var errs []error
	for range 3 {
		if err := <-errc; err != nil {
			errs = append(errs, err)
			stop() // one part failing stops the others
		}
	}
	log.Info("sidecar stopped")
	return errors.Join(errs...)
}

// printVersion prints the build's version, commit, Go version and platform, as text or,
// with --format json, as JSON.
func printVersion(args []string, out io.Writer) error {
	info := version.Get()
	switch strings.Join(args, " ") {
	case "", "--format text", "--format=text":
		_, err := fmt.Fprint(out, info.Text())
		return err
	case "--format json", "--format=json":
		return json.NewEncoder(out).Encode(info)
	}
	return fmt.Errorf("version %s: the only option is --format text|json", strings.Join(args, " "))
}

// engineUnreachable explains a failed first contact with the engine; refused access to its
// socket names the group to add (the image runs as a user of its own, not root).
func engineUnreachable(host string, err error) error {
	sock, isUnix := strings.CutPrefix(host, "unix://")
	if !isUnix || !(errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied")) {
		return fmt.Errorf("cannot reach the Docker engine at %s (is /var/run/docker.sock mounted?): %w", host, err)
	}
	group := "the socket's group"
	if info, serr := os.Stat(sock); serr == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			group = strconv.FormatUint(uint64(st.Gid), 10)
		}
	}
	return fmt.Errorf("no access to the Docker socket %s as user %d:%d: add its group to the sidecar (compose: group_add: [\"%s\"]; docker run --group-add %s), or run it as root (user: \"0\"): %w",
		sock, os.Getuid(), os.Getgid(), group, group, err)
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// healthcheck is the image's HEALTHCHECK: the binary asks its own readiness endpoint.
func healthcheck(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("readiness endpoint answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// ctl sends one request to the running sidecar over its control socket and copies the
// answer to out. A non-2xx answer, or a streamed answer ending in an error, fails.
func ctl(stateDir string, args []string, out io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: sidecar ctl METHOD PATH [JSON-BODY]")
	}
	method, path := strings.ToUpper(args[0]), args[1]
	var body io.Reader
	if len(args) > 2 {
		body = strings.NewReader(args[2])
	}
	sock := filepath.Join(stateDir, control.SocketName)
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://sidecar"+path, body)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("the sidecar is not answering on %s (is it starting?): %w", sock, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the sidecar answered %s", resp.Status)
	}
	return nil
}

// withSwarmManager routes the Swarm calls to the manager DOCKER_BACKUP_SWARM_MANAGER names,
// on a worker node: its Engine cannot answer them. A manager (and an Engine in no swarm) uses
// its own Engine and ignores the setting, which a global service gives every node. A manager
// that does not answer is no reason not to start: the node's global services are backed up,
// and its Swarm calls work again when the manager does. tcp:// needs TLS client certificates:
// a manager's API in the clear is root on it for anyone on the network.
func withSwarmManager(ctx context.Context, api *client.Client, cfg config.Config, log *slog.Logger) (sidecar.API, error) {
	if cfg.SwarmManager == "" {
		return api, nil
	}
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the Docker engine whether it is a swarm manager: %w", err)
	}
	if sw := info.Info.Swarm; sw.ControlAvailable || sw.LocalNodeState != swarmtypes.LocalNodeStateActive {
		log.Info("this node is a swarm manager or in no swarm: " + config.EnvSwarmManager + " is not used")
		return api, nil
	}
	opts := []client.Opt{client.WithHost(cfg.SwarmManager)}
	switch {
	case cfg.SwarmManagerCerts != "":
		dir := cfg.SwarmManagerCerts
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")))
	case strings.HasPrefix(cfg.SwarmManager, "tcp://"):
		return nil, fmt.Errorf("%s=%s is a manager's Engine API over plain TCP, which gives root on that manager to anyone on the network: set %s to a directory with ca.pem, cert.pem and key.pem (dockerd --tlsverify), or use a unix:// socket",
			config.EnvSwarmManager, cfg.SwarmManager, config.EnvSwarmManagerCerts)
	}
	mgr, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", config.EnvSwarmManager, cfg.SwarmManager, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := mgr.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		log.Warn("the swarm manager does not answer: replicated services and deploy.labels wait for it, and status says so", "setting", config.EnvSwarmManager, "manager", cfg.SwarmManager, "error", err)
	}
	return swarm.Routed{Client: api, Manager: mgr}, nil
}
