//go:build !faultinject

// Package faults marks the points where the fault-injection suite (test/e2e, `make faults`)
// stops a backup or a restore to kill the process there: after the artifact is stored but
// before its manifest, in the middle of a restore's stream, and so on. In a normal build
// Point does nothing and costs nothing; built with -tags faultinject, a point named in
// DOCKER_BACKUP_FAULT pauses the process there (see faults_inject.go).
package faults

import "context"

// Point marks a place where a fault can be injected.
func Point(ctx context.Context, name string) {}

// Enabled reports whether this build can inject faults.
const Enabled = false
