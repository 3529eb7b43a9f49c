// Package verify proves that a backup restores: it restores it into a scratch copy of its
// service (same image and configuration, empty volumes, no network) and compares what the
// restored data holds with what the backup recorded while it was made (rows per table, keys,
// a file tree's digest).
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Spec says which backup to verify, of which service.
type Spec struct {
	Engine scratch.Engine
	Target target.Target
	// Backup is a key on the target, or plan.Latest; Manifest, when set, is the backup's
	// manifest already read.
	Backup   string
	Manifest *artifact.Manifest
	// Snapshot, when set, is the incremental backup to verify (Backup and Manifest ignored).
	Snapshot *plan.SnapshotRestore
	// SnapshotKeys, when set, makes Latest consider the target's snapshots too.
	SnapshotKeys *snapshots.Keys
	// Within bounds where Latest looks on the target.
	Within string
	// Service is the backed-up service's container: its configuration is copied.
	Service *containers.Container
	// Keys, AllowUnsigned and Identities are as for a restore.
	Keys          *artifact.Keyring
	AllowUnsigned bool
	Identities    *crypt.Identities
	// Strategies and SameService confine the backup as for a restore (the sidecar).
	Strategies  []string
	SameService bool
	// Owner labels the scratch container (scratch.ProcessOwner, scratch.SidecarOwner).
	Owner string
	// Timeout bounds the whole verify (default 1 hour); the scratch expires after it.
	Timeout time.Duration
	Log     *slog.Logger
	// Phase, when set, is told what the verify is doing ("restoring", "counting").
	Phase func(string)
	// Worker restores and counts volumes beside the scratch copy's data (nil: the Engine's
	// archive API); RequireWorker refuses the fallback.
	Worker        strategy.Worker
	RequireWorker bool
}

// Check is one comparison.
type Check struct {
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
	Passed   bool   `json:"passed"`
	Note     string `json:"note,omitempty"`
}

// Report is the outcome of a verify that ran: Passed, or the checks that failed.
type Report struct {
	Backup   string    `json:"backup"`
	Service  string    `json:"service"`
	Strategy string    `json:"strategy"`
	Image    string    `json:"image"` // the image the scratch copy ran: name and ID
	ImageID  string    `json:"image_id"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`
	Passed   bool      `json:"passed"`
	Checks   []Check   `json:"checks"`
	// Notes say what the scratch copy or the backup left unchecked.
	Notes    []string `json:"notes,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Manifest is the verified backup's manifest.
	Manifest *artifact.Manifest `json:"-"`
}

// ErrFailed is wrapped by Failed: the backup did not restore, or not to what it recorded.
var ErrFailed = errors.New("verify failed")

// Failed returns an error for a report that did not pass, nil for one that did.
func (r *Report) Failed() error {
	if r.Passed {
		return nil
	}
	for _, c := range r.Checks {
		if !c.Passed {
			return fmt.Errorf("%w: %s of %s: %s: expected %s, found %s", ErrFailed, r.Backup, r.Service, c.Name, c.Expected, c.Found)
		}
	}
	return ErrFailed
}

const defaultTimeout = time.Hour

// Run verifies a backup. An error means it could not be verified (no such backup, not
// trusted, the scratch copy did not start); a backup that does not restore, or restores to
// something else than it recorded, gives a Report that did not pass. Whatever Run creates is
// removed before it returns, on every path.
func Run(ctx context.Context, spec Spec) (*Report, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	phase := func(p string) {
		log.Info(p)
		if spec.Phase != nil {
			spec.Phase(p)
		}
	}
	started := time.Now()

	if n, err := scratch.Reap(ctx, spec.Engine, scratch.Stale(spec.Owner, started), log); err != nil {
		log.Warn("could not remove every leftover scratch container", "error", err)
	} else if n > 0 {
		log.Info("removed leftover scratch containers of an earlier verify", "count", n)
	}

	r, err := plan.NewRestore(ctx, plan.RestoreSpec{Target: spec.Target, Backup: spec.Backup, Manifest: spec.Manifest, Within: spec.Within,
		Container: spec.Service, Keys: spec.Keys, AllowUnsigned: spec.AllowUnsigned, Identities: spec.Identities,
		Strategies: spec.Strategies, SameService: spec.SameService, Log: log, Verb: "verify", Snapshot: spec.Snapshot, SnapshotKeys: spec.SnapshotKeys})
	if err != nil {
		return nil, err
	}
	m := r.Manifest
	strat, err := strategies.New(m.Strategy, strategy.Options{Database: databaseOption(m), Log: log, Worker: spec.Worker, RequireWorker: spec.RequireWorker})
	if err != nil {
		return nil, err
	}
	v, ok := strat.(strategy.Verifier)
	if !ok {
		return nil, fmt.Errorf("the %s strategy cannot be verified", m.Strategy)
	}
	report := &Report{Backup: m.Artifact, Service: m.Describe(), Strategy: m.Strategy, Started: started.UTC(), Warnings: r.Warnings, Manifest: m}
	defer func() { report.Duration = time.Since(started).Seconds() }()
	if m.Contents == nil {
		report.Notes = append(report.Notes, "the backup recorded nothing to compare with (made by an older version, or a copy the strategy could not count): only the restore itself is checked")
	}

	phase("creating a scratch copy of " + spec.Service.String())
	sc, err := scratch.Create(ctx, spec.Engine, scratch.Spec{From: spec.Service, ImageID: m.ImageID, Owner: spec.Owner, Lifetime: timeout + 10*time.Minute, Log: log})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := sc.Remove(ctx); err != nil {
			log.Warn("could not remove the scratch container: the next verify removes it", "container", sc.Name, "error", err)
		}
	}()
	report.ImageID, report.Image, report.Notes = sc.Image, m.Image, append(report.Notes, sc.Notes...)
	if sc.Image != m.ImageID {
		report.Image = spec.Service.Image
	}
	src := strategy.Source(m.Source)
	if v.NeedsServer() {
		phase("starting the scratch copy and waiting for its server")
		if err := sc.Start(ctx); err != nil {
			return nil, err
		}
		if err := v.Ready(ctx, sc.Container, src); err != nil {
			if tail := sc.LogTail(context.WithoutCancel(ctx), 15); tail != "" {
				err = fmt.Errorf("%w; its log ends with:\n%s", err, tail)
			}
			return nil, fmt.Errorf("the scratch copy of %s did not get ready: %w", spec.Service, err)
		}
	}

	phase("restoring " + m.Artifact + " into the scratch copy")
	if err = restoreInto(ctx, r, spec, sc.Container, strat, log); err != nil {
		if ctx.Err() != nil || errors.Is(err, pipeline.ErrTarget) || errors.Is(err, crypt.ErrNoIdentity) {
			return nil, err // not the backup's fault: it could not be verified
		}
		report.Checks = append(report.Checks, Check{Name: "restore", Expected: "succeeds", Found: "failed: " + err.Error()})
		return report, nil
	}
	report.Checks = append(report.Checks, Check{Name: "restore", Expected: "succeeds", Found: "succeeded", Passed: true})
	faults.Point(ctx, "verify-restored")

	phase("counting what the scratch copy holds")
	found, err := v.Found(ctx, sc.Container, src, m.Contents)
	if err != nil {
		return nil, fmt.Errorf("counting what the restored %s holds: %w", m.Artifact, err)
	}
	report.Checks = append(report.Checks, Compare(m.Strategy, m.Contents, found)...)
	report.Passed = true
	for _, c := range report.Checks {
		report.Passed = report.Passed && c.Passed
	}
	return report, nil
}

// restoreInto restores the planned backup (a snapshot, or an artifact through the pipeline)
// into the scratch copy c.
func restoreInto(ctx context.Context, r *plan.Restore, spec Spec, c *containers.Container, strat strategy.Strategy, log *slog.Logger) error {
	if r.Snapshot() != nil {
		return r.ApplySnapshot(ctx, c, strat, strategy.WritableMounts(c))
	}
	return pipeline.Restore(ctx, pipeline.RestoreRequest{Target: spec.Target, Manifest: r.Manifest, Container: c, Strategy: strat,
		Trusted: r.Trusted, Allowed: strategy.WritableMounts(c), Identities: spec.Identities, Log: log})
}

// databaseOption is the strategy option that makes the restore go where the backup came from.
func databaseOption(m *artifact.Manifest) string {
	switch m.Strategy {
	case "postgres":
		return m.Source["database"]
	}
	return ""
}
