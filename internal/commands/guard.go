package commands

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/spf13/cobra"
)

// guardCommand is the hidden name of the watchdog (see stopGuard).
const guardCommand = "_guard"

// stopGuard is the plugin's containers.Guard. Before the first container is stopped it
// starts a watchdog: this same binary, in a session of its own (Ctrl-C does not reach it),
// that reads the stops and starts from a pipe. If the plugin dies before it has started
// every container again — kill -9, a lost terminal — the pipe closes without "done" and the
// watchdog starts them (once a stop still under way has finished). A plugin that ends
// normally says "done" and the watchdog exits.
type stopGuard struct {
	mu  sync.Mutex
	w   io.WriteCloser
	err error
}

func (g *stopGuard) Stopping(ctx context.Context, c *containers.Container) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w == nil && g.err == nil {
		g.w, g.err = startWatchdog()
	}
	if g.err != nil {
		return fmt.Errorf("starting the watchdog that restarts stopped containers if the plugin dies: %w", g.err)
	}
	_, err := fmt.Fprintf(g.w, "stop %s %d\n", c.ID, time.Now().UnixNano())
	return err
}

func (g *stopGuard) Started(ctx context.Context, c *containers.Container) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		fmt.Fprintf(g.w, "start %s\n", c.ID)
	}
}

// Close tells the watchdog that the plugin ends normally.
func (g *stopGuard) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		fmt.Fprintln(g.w, "done")
		g.w.Close()
		g.w = nil
	}
}

// startWatchdog runs `docker-backup [global flags] backup _guard` with its stdin on a pipe.
func startWatchdog() (io.WriteCloser, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The global flags (--context, -H, --config, ...) come before the plugin's name: the
	// watchdog talks to the same engine.
	var args []string
	for _, a := range os.Args[1:] {
		if a == "backup" {
			break
		}
		args = append(args, a)
	}
	args = append(args, "backup", guardCommand)
	cmd := exec.Command(exe, args...)
	for _, kv := range os.Environ() {
		// Not the CLI's plugin socket: the watchdog must outlive the CLI.
		if !strings.HasPrefix(kv, "DOCKER_CLI_PLUGIN_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	detach(cmd)
	if dir := filepath.Join(config.Dir(), "docker-backup"); os.MkdirAll(dir, 0o700) == nil {
		if f, err := os.OpenFile(filepath.Join(dir, "watchdog.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
	}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }()
	return w, nil
}

func newGuardCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:    guardCommand,
		Short:  "Watchdog: starts containers the plugin stopped if it dies before it can (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGuard(dockerCli, os.Stdin)
		},
	}
}

// runGuard reads the plugin's stops and starts until its pipe closes; without "done", it
// starts the containers still stopped.
func runGuard(dockerCli command.Cli, in io.Reader) error {
	stopped := map[string]time.Time{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "done":
			return nil
		case len(f) == 3 && f[0] == "stop":
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			stopped[f[1]] = time.Unix(0, ns)
		case len(f) == 2 && f[0] == "start":
			delete(stopped, f[1])
		}
	}
	if len(stopped) == 0 {
		return nil
	}
	// The plugin died with containers stopped: start them. Not the plugin's context: ours
	// must not end with it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	api := dockerCli.Client()
	stamp := time.Now().Format(time.RFC3339)
	for id, at := range stopped {
		started, err := containers.Restart(ctx, api, id, at)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "%s watchdog: the plugin ended with container %s stopped, and starting it failed: %v\n", stamp, id, err)
		case started:
			fmt.Fprintf(os.Stderr, "%s watchdog: the plugin ended with container %s stopped: started it again\n", stamp, id)
		}
	}
	return nil
}
