// Package wire converts between the engine's types and the control protocol's (package
// control, which imports none of them), at its two edges: the sidecar answering the plugin
// (From...) and the plugin reading the answer (To...).
package wire

import (
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/verify"
)

// FromSummary is a listed backup as the sidecar sends it.
func FromSummary(s artifact.Summary) control.Backup {
	return control.Backup{Key: s.Key, Project: s.Project, Service: s.Service, Job: s.Job, Container: s.Container,
		Strategy: s.Strategy, CreatedAt: s.CreatedAt, DurationMS: s.DurationMS, Size: s.Size, RawSize: s.RawSize,
		SHA256: s.SHA256, Encrypted: s.Encrypted, KeyID: s.KeyID, Untrusted: s.Untrusted, Snapshot: s.Snapshot}
}

// ToSummary is a backup the sidecar listed, as the plugin selects among them.
func ToSummary(b control.Backup) artifact.Summary {
	return artifact.Summary{Key: b.Key, Project: b.Project, Service: b.Service, Job: b.Job, Container: b.Container,
		Strategy: b.Strategy, CreatedAt: b.CreatedAt, DurationMS: b.DurationMS, Size: b.Size, RawSize: b.RawSize,
		SHA256: b.SHA256, Encrypted: b.Encrypted, KeyID: b.KeyID, Untrusted: b.Untrusted, Snapshot: b.Snapshot}
}

// FromManifest is the backup a run made or a restore applied, as the sidecar sends it; nil
// for nil.
func FromManifest(m *artifact.Manifest) *control.Backup {
	if m == nil {
		return nil
	}
	b := &control.Backup{Key: m.Artifact, Project: m.Project, Service: m.Service, Job: m.Job, Container: m.Container,
		Strategy: m.Strategy, CreatedAt: m.CreatedAt, DurationMS: m.DurationMS, Size: m.Size, RawSize: m.RawSize,
		SHA256: m.SHA256, Encrypted: m.Encryption != nil}
	if m.Signature != nil {
		b.KeyID = m.Signature.KeyID
	}
	return b
}

// FromReport is a verify's report as the sidecar sends it; nil for nil.
func FromReport(r *verify.Report) *control.VerifyReport {
	if r == nil {
		return nil
	}
	w := &control.VerifyReport{Backup: r.Backup, Service: r.Service, Strategy: r.Strategy, Image: r.Image, ImageID: r.ImageID,
		Started: r.Started, Duration: r.Duration, Passed: r.Passed, Notes: r.Notes, Warnings: r.Warnings}
	for _, c := range r.Checks {
		w.Checks = append(w.Checks, control.VerifyCheck(c))
	}
	return w
}

// ToReport is a verify's report the sidecar sent, as the plugin prints it; nil for nil.
func ToReport(w *control.VerifyReport) *verify.Report {
	if w == nil {
		return nil
	}
	r := &verify.Report{Backup: w.Backup, Service: w.Service, Strategy: w.Strategy, Image: w.Image, ImageID: w.ImageID,
		Started: w.Started, Duration: w.Duration, Passed: w.Passed, Notes: w.Notes, Warnings: w.Warnings}
	for _, c := range w.Checks {
		r.Checks = append(r.Checks, verify.Check(c))
	}
	return r
}
