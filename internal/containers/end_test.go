package containers

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The script that ends a command finds it and its descendants by the marker in their
// environment, and nothing else; run here with the host's sh, as it runs in a container.
func TestEndScriptSignalsOnlyTheMarkedProcesses(t *testing.T) {
	start := func(marker string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 600 & wait")
		if marker != "" {
			cmd.Env = append(cmd.Environ(), execMarkerEnv+"="+marker)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	marked, other := start("0123456789abcdef01234567"), start("")
	time.Sleep(200 * time.Millisecond) // the shells have started their sleep
	run := func(sig string) string {
		out, err := exec.Command("sh", "-c", endScript, "sh", sig, "0123456789abcdef01234567").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if n := run("0"); n != "2" {
		t.Fatalf("found %s processes, want the shell and its sleep", n)
	}
	if n := run("TERM"); n != "2" {
		t.Fatalf("signalled %s processes, want 2", n)
	}
	done := make(chan error, 1)
	go func() { done <- marked.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the marked command did not end")
	}
	deadline := time.Now().Add(5 * time.Second)
	for run("0") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("a marked process outlived SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Not reaped by anyone here: ended, it would be a zombie.
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", other.Process.Pid)); err != nil || strings.Contains(string(stat), ") Z ") {
		t.Errorf("an unmarked process was ended: %s %v", stat, err)
	}
}
