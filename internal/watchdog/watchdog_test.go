package watchdog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

// stoppedAt is when the plugin stopped a container in these tests: the fake engine says its
// containers stopped at 10:00.
var stoppedAt = time.Date(2026, 11, 26, 9, 59, 0, 0, time.UTC).UnixNano()

func testGuard(t *testing.T, api *flakyAPI, within time.Duration) (guard, *strings.Builder) {
	out := &strings.Builder{}
	return guard{api: api, out: out, failures: filepath.Join(t.TempDir(), failuresFile), within: within, backoff: 10 * time.Millisecond}, out
}

// flakyAPI is a fake Engine of stopped containers whose ContainerStart fails a container's
// first starts.
type flakyAPI struct {
	*enginetest.Engine
	mu      sync.Mutex
	started []string
	fails   map[string]int // starts that fail yet; -1: every one
	tries   map[string]int
}

func newFlakyAPI() *flakyAPI {
	f := &flakyAPI{Engine: enginetest.New(), fails: map[string]int{}, tries: map[string]int{}}
	f.OnCall = f.start
	return f
}

// service makes a compose service's container known to the fake engine, stopped at 10:00.
func (f *flakyAPI) service(project, service string) string {
	id := project + "-" + service + "-id"
	f.Add(enginetest.Service(project, service, enginetest.WithID(id), enginetest.Stopped(), enginetest.WithFinishedAt("2026-11-26T10:00:00Z")))
	return id
}

// start counts the starts, and fails those it is told to.
func (f *flakyAPI) start(c enginetest.Call) error {
	if c.Method != "ContainerStart" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[c.ID]++
	n := f.fails[c.ID]
	if n > 0 {
		f.fails[c.ID]--
	}
	if n != 0 {
		return errors.New("driver failed programming external connectivity: port is already allocated")
	}
	f.started = append(f.started, c.ID)
	return nil
}

// The watchdog starts what the plugin left stopped when its pipe closes without "done", the
// last stopped first; not a container stopped before the plugin stopped it, not after "done".
func TestWatchdog(t *testing.T) {
	api := newFlakyAPI()
	left := api.service("shop", "db")
	app := api.service("shop", "app")
	restarted := api.service("shop", "web")
	early := api.service("shop", "old") // stopped at 10:00 by someone else
	stamp := func(at string) int64 { tm, _ := time.Parse(time.RFC3339, at); return tm.UnixNano() }
	in := fmt.Sprintf("stop %s %d\nstop %s %d\nstop %s %d\nstart %s\nstop %s %d\n", app, stamp("2026-11-26T09:59:00Z"), left, stamp("2026-11-26T09:59:00Z"),
		restarted, stamp("2026-11-26T09:59:00Z"), restarted, early, stamp("2026-11-26T11:00:00Z"))
	g, _ := testGuard(t, api, time.Second)
	if err := g.run(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(api.started, ","); got != left+","+app {
		t.Errorf("started %v, want %s then %s", got, left, app)
	}
	api.started = nil
	if err := g.run(strings.NewReader(in + "done\n")); err != nil || len(api.started) != 0 {
		t.Errorf("after done: started %v, %v", api.started, err)
	}
}

// A container that does not start at once (its port still held, a network being removed) is
// tried again with backoff until it starts.
func TestWatchdogRetriesUntilTheContainerStarts(t *testing.T) {
	api := newFlakyAPI()
	db := api.service("shop", "db")
	api.fails[db] = 3
	g, out := testGuard(t, api, 10*time.Second)
	if err := g.run(strings.NewReader(fmt.Sprintf("stop %s %d\n", db, stoppedAt))); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if api.tries[db] != 4 || strings.Join(api.started, ",") != db {
		t.Errorf("%d tries, started %v:\n%s", api.tries[db], api.started, out)
	}
	if !strings.Contains(out.String(), "attempt 3") || !strings.Contains(out.String(), "started it again") {
		t.Errorf("the log does not tell the attempts:\n%s", out)
	}
}

// One that never starts is tried for a bounded time, then reported loudly: in the log (and the
// terminal), by the exit status, and by the plugin's next command, once.
func TestWatchdogSaysLoudlyWhenItCannot(t *testing.T) {
	api := newFlakyAPI()
	db := api.service("shop", "db")
	api.fails[db] = -1
	g, out := testGuard(t, api, 300*time.Millisecond)
	start := time.Now()
	err := g.run(strings.NewReader(fmt.Sprintf("stop %s %d\n", db, stoppedAt)))
	if err == nil || !strings.Contains(err.Error(), "docker start "+db) {
		t.Fatalf("error %v, want one naming %s", err, db)
	}
	if d := time.Since(start); d > 5*time.Second || api.tries[db] < 3 {
		t.Errorf("%d tries in %s", api.tries[db], d)
	}
	if !strings.Contains(out.String(), "WATCHDOG FAILED") || !strings.Contains(out.String(), "port is already allocated") {
		t.Errorf("the log does not say it:\n%s", out)
	}
	var next strings.Builder
	reportFailures(&next, g.failures)
	if !strings.Contains(next.String(), "WARNING: ") || !strings.Contains(next.String(), "docker start "+db) {
		t.Errorf("the next command says %q", next.String())
	}
	if _, err := os.Stat(g.failures); !os.IsNotExist(err) {
		t.Errorf("the failures are reported again: %v", err)
	}
}
