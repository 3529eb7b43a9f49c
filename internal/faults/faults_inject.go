//go:build faultinject

package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Enabled reports whether this build can inject faults.
const Enabled = true

// Point pauses the process when its name is in DOCKER_BACKUP_FAULT (comma-separated): it
// prints "fault point NAME reached" on standard error, then waits for the test to kill the
// process, stop it, or cancel the operation — or until the file DOCKER_BACKUP_FAULT_RELEASE
// names exists (the test did something meanwhile and lets it go on), at most ten minutes.
// With DOCKER_BACKUP_FAULT_ARMED naming a file, a point pauses only if that file exists, and
// removes it: the test arms the point for one operation, and a restarted sidecar is not
// paused again.
func Point(ctx context.Context, name string) {
	if !slices.Contains(strings.Split(os.Getenv("DOCKER_BACKUP_FAULT"), ","), name) {
		return
	}
	if armed := os.Getenv("DOCKER_BACKUP_FAULT_ARMED"); armed != "" {
		if err := os.Remove(armed); err != nil {
			return // not armed, or fired before
		}
	}
	fmt.Fprintf(os.Stderr, "fault point %s reached\n", name)
	release := os.Getenv("DOCKER_BACKUP_FAULT_RELEASE")
	deadline := time.After(10 * time.Minute)
	for {
		if release != "" {
			if _, err := os.Stat(release); err == nil {
				fmt.Fprintf(os.Stderr, "fault point %s released\n", name)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
