// Package watchdog restarts what a killed plugin stopped: before the plugin stops its first
// container it starts a watchdog (this same binary, the hidden command Command, in a session
// of its own) and tells it every stop and start; a watchdog whose pipe closes without "done"
// starts the containers still stopped, and what it cannot start the plugin's next command
// reports.
package watchdog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker/cli/cli/config"
	"golang.org/x/term"
)

// Command is the hidden name of the watchdog's command (see Guard).
const Command = "_guard"

// Guard is the plugin's containers.Guard. Before the first container is stopped it
// starts a watchdog: this same binary, in a session of its own (Ctrl-C does not reach it),
// that reads the stops and starts from a pipe. If the plugin dies before it has started
// every container again — kill -9, a lost terminal — the pipe closes without "done" and the
// watchdog starts them (once a stop still under way has finished). A plugin that ends
// normally says "done" and the watchdog exits.
type Guard struct {
	mu  sync.Mutex
	w   io.WriteCloser
	err error
}

// Stopping tells the watchdog, started first, that c is being stopped.
func (g *Guard) Stopping(ctx context.Context, c *containers.Container) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w == nil && g.err == nil {
		g.w, g.err = startWatchdog()
	}
	if g.err != nil {
		return fmt.Errorf("starting the watchdog that restarts stopped containers if the plugin dies: %w", g.err)
	}
	line := fmt.Sprintf("stop %s %d", c.ID, time.Now().UnixNano())
	if c.Scaled != nil {
		// A Swarm service scaled to 0: its ID and the count to scale it back to.
		line += fmt.Sprintf(" %s %d", c.Scaled.ServiceID, c.Scaled.Replicas)
	}
	_, err := fmt.Fprintln(g.w, line)
	return err
}

// Started tells the watchdog that c runs again.
func (g *Guard) Started(ctx context.Context, c *containers.Container) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		fmt.Fprintf(g.w, "start %s\n", c.ID)
	}
}

// Close tells the watchdog that the plugin ends normally.
func (g *Guard) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		fmt.Fprintln(g.w, "done")
		g.w.Close()
		g.w = nil
	}
}

// startWatchdog runs `docker-backup [global flags] backup _guard` with its stdin on a pipe.
// Its output goes to watchdog.log; when the plugin's stderr is a terminal, the watchdog also
// writes there (fd 3), where whoever ran the plugin sees it (a pipe is not passed: a caller
// waiting for the plugin's output would wait for the watchdog too).
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
	args = append(args, "backup", Command)
	cmd := exec.Command(exe, args...)
	for _, kv := range os.Environ() {
		// Not the CLI's plugin socket: the watchdog must outlive the CLI.
		if !strings.HasPrefix(kv, "DOCKER_CLI_PLUGIN_SOCKET=") && !strings.HasPrefix(kv, envTTY+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		cmd.ExtraFiles = []*os.File{os.Stderr}
		cmd.Env = append(cmd.Env, envTTY+"=3")
	}
	detach(cmd)
	if dir := dir(); os.MkdirAll(dir, 0o700) == nil {
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

// envTTY tells the watchdog which descriptor is the plugin's terminal.
const envTTY = "DOCKER_BACKUP_WATCHDOG_TTY"

// dir holds the watchdog's log and the failures it leaves for the next command.
func dir() string { return filepath.Join(config.Dir(), "docker-backup") }

// failuresFile lists, one a line, the containers a watchdog could not start; the next
// command of the plugin prints them and removes the file.
const failuresFile = "watchdog-failures"

// Serve is the watchdog's command: it reads the plugin's stops and starts from in and, if the
// plugin ends without "done", starts what it left stopped through api.
func Serve(api containers.API, in io.Reader) error {
	out := io.Writer(os.Stderr)
	if fd, err := strconv.Atoi(os.Getenv(envTTY)); err == nil && fd > 2 {
		out = io.MultiWriter(os.Stderr, os.NewFile(uintptr(fd), "terminal"))
	}
	g := guard{api: api, out: out, failures: filepath.Join(dir(), failuresFile), within: 10 * time.Minute, backoff: time.Second}
	return g.run(in)
}

// guard is the watchdog's side: what it reads, where it says what it did, and for how long it
// retries a container that does not start.
type guard struct {
	api      containers.API
	out      io.Writer // the watchdog's log (and the plugin's terminal)
	failures string    // the file the next command reports
	within   time.Duration
	backoff  time.Duration // the first wait between attempts, doubled up to 30 s
}

type guardStop struct {
	id    string
	at    time.Time
	scale *containers.ServiceScale // a Swarm service scaled to 0 instead
}

// run reads the plugin's stops and starts until its pipe closes; without "done", it starts
// the containers still stopped, the last stopped first.
func (g guard) run(in io.Reader) error {
	var stopped []guardStop
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "done":
			return nil
		case (len(f) == 3 || len(f) == 5) && f[0] == "stop":
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			stopped = slices.DeleteFunc(stopped, func(s guardStop) bool { return s.id == f[1] })
			st := guardStop{id: f[1], at: time.Unix(0, ns)}
			if len(f) == 5 {
				n, _ := strconv.ParseUint(f[4], 10, 64)
				st.scale = &containers.ServiceScale{ServiceID: f[3], Name: f[3], Replicas: n}
			}
			stopped = append(stopped, st)
		case len(f) == 2 && f[0] == "start":
			stopped = slices.DeleteFunc(stopped, func(s guardStop) bool { return s.id == f[1] })
		}
	}
	slices.Reverse(stopped)
	return g.restart(stopped)
}

// restart starts the containers again, retrying with backoff for g.within; what still does not
// start is said loudly: in the log and on the terminal, in the file the next command reports,
// and as the watchdog's exit status. Not the plugin's context: ours must not end with it.
func (g guard) restart(stopped []guardStop) error {
	if len(stopped) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.within+time.Minute)
	defer cancel()
	deadline, wait := time.Now().Add(g.within), g.backoff
	lastErr := map[string]error{}
	for attempt := 1; ; attempt++ {
		var left []guardStop
		for _, s := range stopped {
			started, err := containers.Resume(ctx, g.api, s.id, s.at, s.scale)
			switch {
			case err != nil:
				left, lastErr[s.id] = append(left, s), err
				fmt.Fprintf(g.out, "%s watchdog: the plugin ended with container %s stopped; starting it failed (attempt %d): %v\n", stamp(), s.id, attempt, err)
			case started:
				fmt.Fprintf(g.out, "%s watchdog: the plugin ended with container %s stopped: started it again\n", stamp(), s.id)
			}
		}
		if stopped = left; len(stopped) == 0 {
			return nil
		}
		if time.Now().Add(wait).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	var ids, report []string
	for _, s := range stopped {
		ids = append(ids, s.id)
		report = append(report, fmt.Sprintf("%s the plugin ended with container %s stopped, and the watchdog could not start it in %s: %v; start it by hand: docker start %s",
			stamp(), s.id, g.within, lastErr[s.id], s.id))
	}
	for _, line := range report {
		fmt.Fprintln(g.out, "WATCHDOG FAILED: "+line)
	}
	if f, err := os.OpenFile(g.failures, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		_, _ = f.WriteString(strings.Join(report, "\n") + "\n")
		_ = f.Close()
	}
	return fmt.Errorf("the watchdog could not start %s: start it by hand (docker start %s)", strings.Join(ids, ", "), strings.Join(ids, " "))
}

func stamp() string { return time.Now().Format(time.RFC3339) }

// ReportFailures prints what a watchdog could not start since the last command, once.
func ReportFailures(w io.Writer) { reportFailures(w, filepath.Join(dir(), failuresFile)) }

func reportFailures(w io.Writer, file string) {
	b, err := os.ReadFile(file)
	if err != nil || len(b) == 0 {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fmt.Fprintln(w, "WARNING: "+line)
	}
	_ = os.Remove(file)
}
