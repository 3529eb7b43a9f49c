package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The watchdog starts what the plugin left stopped when its pipe closes without "done";
// not a container stopped before the plugin stopped it, not after "done".
func TestWatchdog(t *testing.T) {
	api := &fakeAPI{}
	left := api.service("shop", "db", false)
	restarted := api.service("shop", "web", false)
	early := api.service("shop", "old", false) // stopped at 10:00 by someone else
	stamp := func(at string) int64 { tm, _ := time.Parse(time.RFC3339, at); return tm.UnixNano() }
	in := fmt.Sprintf("stop %s %d\nstop %s %d\nstart %s\nstop %s %d\n", left, stamp("2026-11-26T09:59:00Z"),
		restarted, stamp("2026-11-26T09:59:00Z"), restarted, early, stamp("2026-11-26T11:00:00Z"))
	if err := runGuard(newFakeCli(api), strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(api.started, ",") != left {
		t.Errorf("started %v, want only %s", api.started, left)
	}
	api.started = nil
	if err := runGuard(newFakeCli(api), strings.NewReader(in+"done\n")); err != nil || len(api.started) != 0 {
		t.Errorf("after done: started %v, %v", api.started, err)
	}
}
