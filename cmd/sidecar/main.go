// Command sidecar is the docker-backup service that runs inside a compose project. This
// build is its skeleton: it connects to the Docker Engine through the mounted socket and
// answers health checks; scheduling from service labels arrives with the sidecar issue.
// It must not import github.com/docker/cli, to stay a small static binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/moby/moby/client"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		log.Error("sidecar failed", "error", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("sidecar", flag.ContinueOnError)
	listen := fs.String("listen", envOr("DOCKER_BACKUP_LISTEN", ":9090"), "address of the health endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.Arg(0) == "healthcheck" {
		return healthcheck(*listen)
	}
	if fs.Arg(0) == "version" {
		fmt.Println(version.Version)
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	api, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("creating the Docker client: %w", err)
	}
	defer api.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = api.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true})
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach the Docker engine at %s (is /var/run/docker.sock mounted?): %w", api.DaemonHost(), err)
	}
	log.Info("sidecar started", "version", version.Version, "docker", api.DaemonHost())

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", *listen, err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("sidecar stopped")
	return nil
}

// healthcheck is the image's HEALTHCHECK: the binary asks its own health endpoint.
func healthcheck(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health endpoint answered %s", resp.Status)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
