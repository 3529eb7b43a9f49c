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
// prints "fault point NAME reached" on standard error, then waits (up to ten minutes) for
// the test to kill the process, stop it, or cancel the operation.
func Point(ctx context.Context, name string) {
	if !slices.Contains(strings.Split(os.Getenv("DOCKER_BACKUP_FAULT"), ","), name) {
		return
	}
	fmt.Fprintf(os.Stderr, "fault point %s reached\n", name)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Minute):
	}
}
