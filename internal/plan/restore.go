package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/detect"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/listing"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/selection"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Latest is what a user writes for the newest backup of a service.
const Latest = "latest"

// RestoreSpec is which backup to restore into which service, and what to trust.
type RestoreSpec struct {
	Target target.Target
	// Backup is a key on the target, or Latest.
	Backup string
	// Manifest, when set, is the backup's manifest already read (Backup is then ignored).
	Manifest *artifact.Manifest
	// Snapshot, when set, is the incremental backup to restore (Backup and Manifest are
	// then ignored).
	Snapshot *SnapshotRestore
	// SnapshotKeys, when set, lets Backup name a snapshot of the target's repository
	// (snapshot:ID), and Latest consider them too (opened with them, or Identities).
	SnapshotKeys *snapshots.Keys
	// Paths restore only these absolute container paths of a volume snapshot (with their
	// parents); a full backup restores whole.
	Paths []string
	// Within bounds where Latest looks on the target ("" the whole target).
	Within string
	// Container is the service to restore into (see Find).
	Container *containers.Container
	Options   strategy.Options
	// Keys verify the manifest's signature; a backup no key of them vouches for is refused
	// unless AllowUnsigned (then restored under stricter rules, see strategy.Data.Trusted).
	Keys          *artifact.Keyring
	AllowUnsigned bool
	// Identities decrypt an encrypted backup.
	Identities *crypt.Identities
	// Strategies, when set, are the only strategies the service is backed up with (its
	// jobs' labels): a backup of another kind is refused.
	Strategies []string
	// SameService refuses a backup of another service than Container's.
	SameService bool
	// Allowed narrows where the restore may write (the sidecar: the service's jobs' paths);
	// nil: the container's writable volumes and bind mounts. It can never widen them.
	Allowed  []string
	Guard    containers.Guard
	Progress func(rawBytes int64)
	// Applying, when set, is called once the artifact is verified, just before the restore
	// begins to change the service (pipeline.RestoreRequest.Applying).
	Applying func(ctx context.Context)
	Log      *slog.Logger
	// Verb is what the plan is for, in messages: "restore" (the default) or "verify".
	Verb string
}

// Restore is a planned restore.
type Restore struct {
	Manifest  *artifact.Manifest
	Container *containers.Container
	Strategy  strategy.Strategy
	// Trusted: the manifest is signed with the key.
	Trusted bool
	// Warnings are what the user should know before going ahead (versions, another service,
	// an unsigned backup restored on request).
	Warnings []string
	allowed  []string
	spec     RestoreSpec
}

// Errors of NewRestore.
var (
	// ErrNotTrusted: the backup's origin cannot be proved (unsigned, or another key).
	ErrNotTrusted = errors.New("the backup's origin cannot be proved")
	// ErrRefused: the backup does not fit the service (its kind, its service).
	ErrRefused = errors.New("the backup does not fit the service")
)

// NewRestore plans a restore: it finds the backup (the newest one that is not dated in the
// future, for Latest), proves its origin (signature), and checks that it fits the service:
// its kind, its service, and that everything it would write is inside the container's
// writable mounts. Nothing is touched yet.
func NewRestore(ctx context.Context, spec RestoreSpec) (*Restore, error) {
	c := spec.Container
	if spec.Log == nil {
		spec.Log = slog.New(slog.DiscardHandler)
	}
	r := &Restore{Container: c, spec: spec}
	m := spec.Manifest
	var err error
	switch {
	case spec.Snapshot != nil:
		// The repository verified it: signed by a trusted key, its bytes its name.
		m, r.Trusted = snapshots.Manifest(spec.Snapshot.Snapshot), true
	case spec.SnapshotKeys != nil && snapshots.IsRef(spec.Backup):
		if r.spec.Snapshot, err = r.loadSnapshot(ctx, spec.Backup); err != nil {
			return nil, err
		}
		spec, r.Trusted = r.spec, true
		m = snapshots.Manifest(spec.Snapshot.Snapshot)
	case m != nil:
	case spec.Backup == Latest:
		if m, err = r.latest(ctx); err != nil {
			return nil, err
		}
		if r.spec.Snapshot != nil { // the newest is a snapshot
			spec = r.spec
			r.Trusted = true
		}
	default:
		if m, err = listing.ReadManifest(ctx, spec.Target, strings.TrimSuffix(spec.Backup, artifact.ManifestSuffix)); err != nil {
			return nil, err
		}
	}
	r.Manifest = m
	if err := r.selectPaths(); err != nil {
		return nil, err
	}
	if spec.Snapshot == nil && !r.Trusted {
		if err := r.trust(m); err != nil {
			return nil, err
		}
	}
	if m.Encryption != nil && spec.Identities.Empty() {
		return nil, fmt.Errorf("%s: %s is encrypted (age) for %s: give an identity that can decrypt it (-i/--identity FILE, or DOCKER_BACKUP_AGE_IDENTITY_FILE on the sidecar): %w",
			r.refusing(), m.Artifact, strings.Join(m.Encryption.Recipients, ", "), crypt.ErrNoIdentity)
	}
	if m.InFuture(time.Now()) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the backup says it was made at %s, in the future: check the clocks of the hosts that write to this target", m.CreatedAt.Local().Format(time.RFC3339)))
	}
	if owner := m.Describe(); owner != artifact.ServiceName(c.Project, c.Service, c.Name) {
		if spec.SameService {
			return nil, fmt.Errorf("refusing to %s %s into %s: it is a backup of %s: %w", r.verb(), m.Artifact, c, owner, ErrRefused)
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s is a backup of %s, not of %s", m.Artifact, owner, artifact.ServiceName(c.Project, c.Service, c.Name)))
	}
	if len(spec.Strategies) > 0 && !slices.Contains(spec.Strategies, m.Strategy) {
		return nil, fmt.Errorf("refusing to %s: %s is a %s backup, but %s is backed up with %s: %w", r.verb(), m.Artifact, m.Strategy, c, strings.Join(spec.Strategies, ", "), ErrRefused)
	}
	if !detect.Supports(ctx, c, m.Strategy) {
		var have []string
		for _, cand := range detect.All(ctx, c) {
			have = append(have, cand.Strategy)
		}
		if len(have) == 0 {
			have = []string{"none"}
		}
		return nil, fmt.Errorf("refusing to %s: %s is a %s backup, but %s (image %s) does not look like a %s server (it supports: %s); if it is one, label it %s=%s%w",
			r.verb(), m.Artifact, m.Strategy, c, c.Image, m.Strategy, strings.Join(have, ", "), labels.Strategy, m.Strategy, errkind.Silent(ErrRefused))
	}
	opts := spec.Options
	opts.Log = spec.Log
	if r.Strategy, err = strategies.New(m.Strategy, opts); err != nil {
		return nil, err
	}
	r.allowed = strategy.WritableMounts(c)
	if spec.Allowed != nil {
		var narrowed []string
		for _, a := range spec.Allowed {
			if _, ok := mountpath.Holder(a, r.allowed); ok {
				narrowed = append(narrowed, a)
			}
		}
		r.allowed = narrowed
	}
	r.Warnings = append(r.Warnings, versionWarning(ctx, c, m, r.Strategy)...)
	return r, nil
}

func (r *Restore) verb() string {
	if r.spec.Verb == "" {
		return "restore"
	}
	return r.spec.Verb
}

// verbPast is the verb's past participle: "restored", "verified".
func (r *Restore) verbPast() string {
	if v := r.verb(); v != "verify" {
		return v + "d"
	}
	return "verified"
}

// refusing starts the message of a refusal: a refused restore has touched nothing.
func (r *Restore) refusing() string {
	if r.verb() == "restore" {
		return fmt.Sprintf("refusing to restore, %s is untouched", r.Container)
	}
	return "refusing to " + r.verb()
}

// trust proves the manifest's origin, or says why it cannot and what to do.
func (r *Restore) trust(m *artifact.Manifest) error {
	err := r.spec.Keys.Verify(m)
	if err == nil {
		r.Trusted = true
		return nil
	}
	keyName := "none is configured"
	if ids := r.spec.Keys.IDs(); len(ids) > 0 {
		keyName = "trusted: " + strings.Join(ids, ", ")
	}
	switch {
	case errors.Is(err, artifact.ErrBadSignature):
		return fmt.Errorf("%s: the manifest of %s was changed after it was signed — its sha256, size and paths cannot be trusted (tampered with): %w", r.refusing(), m.Artifact, err)
	case r.spec.AllowUnsigned:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s is not signed with this tool's key (%v): restored because unsigned backups are allowed, without set-user-ID files, devices or file capabilities", m.Artifact, err))
		return nil
	case errors.Is(err, artifact.ErrOtherKey):
		how := "trust the public key of the host that made it (--trust FILE or DOCKER_BACKUP_TRUSTED_KEYS_FILE; `docker backup key` prints it there) or give its signing key file (DOCKER_BACKUP_SIGNING_KEY_FILE)"
		if m.Signature.Scheme == artifact.SchemeHMAC {
			how = "give the signing key file it was made with (DOCKER_BACKUP_SIGNING_KEY_FILE): an HMAC-signed backup (format 1) verifies with that secret only"
		}
		return fmt.Errorf("refusing to %s %s: %v (%s); %s, or pass --allow-unsigned if you trust everyone who can write to %s: %w",
			r.verb(), m.Artifact, err, keyName, how, r.spec.Target, ErrNotTrusted)
	}
	return fmt.Errorf("refusing to %s %s: its manifest is not signed, so nothing proves this tool made it (whoever can write to %s can forge one); pass --allow-unsigned if you trust them: %w",
		r.verb(), m.Artifact, r.spec.Target, ErrNotTrusted)
}

// latest finds the newest usable backup of the container's service (selection.Filter:
// signed by a trusted key unless unsigned backups are allowed, not dated in the future); of
// the same project first (one listed from above a prefix has none), then of any project.
func (r *Restore) latest(ctx context.Context) (*artifact.Manifest, error) {
	c := r.Container
	found, err := listing.List(ctx, r.spec.Target, r.spec.Within, r.spec.Keys)
	if err != nil {
		return nil, err
	}
	service := ServiceName(c)
	repository, snaps := r.snapshots(ctx)
	found.Backups = append(found.Backups, snaps...)
	// Of this project only: another project's backup of a service of the same name is
	// restored by naming it, never as "latest".
	f := selection.Filter{Project: c.Project, ExactProject: true, Service: service, AllowUnsigned: r.spec.AllowUnsigned}
	best, skipped, ok := f.Latest(found.Backups)
	if ok && best.Snapshot {
		id, _ := snapshots.ParseRef(best.Key)
		s, err := repository.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, err
		}
		r.spec.Snapshot = &SnapshotRestore{Repo: repository, Snapshot: s}
		return snapshots.Manifest(s), nil
	}
	for _, s := range skipped {
		r.Warnings = append(r.Warnings, "latest skips "+s.Why)
	}
	if !ok {
		if len(skipped) > 0 {
			var why []string
			untrusted := false
			for _, s := range skipped {
				why = append(why, s.Why)
				untrusted = untrusted || s.Verdict == selection.Untrusted
			}
			if untrusted {
				return nil, fmt.Errorf("no backup of service %q in %s that can be %s: %s; trust the public key of the host that made them (--trust FILE or DOCKER_BACKUP_TRUSTED_KEYS_FILE; `docker backup key` prints it there), or pass --allow-unsigned if you trust everyone who can write to %s: %w",
					service, r.spec.Target, r.verbPast(), strings.Join(why, "; "), r.spec.Target, ErrNotTrusted)
			}
			return nil, fmt.Errorf("no backup of service %q in %s that can be %s: %s", service, r.spec.Target, r.verbPast(), strings.Join(why, "; "))
		}
		if other, _, any := (selection.Filter{Service: service, AllowUnsigned: r.spec.AllowUnsigned}).Latest(found.Backups); any {
			return nil, fmt.Errorf("no backup of %s in %s; there are backups of %s, the newest %s: restore it by that name if it is what you want (latest is never another project's)",
				c, r.spec.Target, other.Describe(), other.Key)
		}
		return nil, fmt.Errorf("no backup of service %q in %s", service, r.spec.Target)
	}
	return listing.ReadManifest(ctx, r.spec.Target, best.Key)
}

// snapshots are the snapshots of the target's repository, as listings show them (none unless
// SnapshotKeys are given, or when the repository cannot be opened: a warning says why).
func (r *Restore) snapshots(ctx context.Context) (*repo.Repo, []artifact.Summary) {
	if r.spec.SnapshotKeys == nil {
		return nil, nil
	}
	repository, err := snapshots.Open(ctx, r.spec.Target, *r.spec.SnapshotKeys, repo.Access{Trust: r.spec.Keys, Identities: r.spec.Identities})
	if err != nil {
		if !errors.Is(err, snapshots.ErrNone) {
			r.Warnings = append(r.Warnings, "latest does not consider the incremental backups: "+err.Error())
		}
		return nil, nil
	}
	snaps, err := repository.Snapshots(ctx)
	if err != nil {
		r.Warnings = append(r.Warnings, "latest skips snapshots that cannot be verified: "+err.Error())
	}
	out := make([]artifact.Summary, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, snapshots.Summary(s))
	}
	return repository, out
}

// loadSnapshot opens the target's repository and the snapshot named ref (snapshot:ID).
func (r *Restore) loadSnapshot(ctx context.Context, ref string) (*SnapshotRestore, error) {
	repository, s, err := snapshots.OpenRef(ctx, r.spec.Target, ref, *r.spec.SnapshotKeys, repo.Access{Trust: r.spec.Keys, Identities: r.spec.Identities})
	if err != nil {
		return nil, err
	}
	return &SnapshotRestore{Repo: repository, Snapshot: s}, nil
}

// selectPaths narrows a volume snapshot's restore to RestoreSpec.Paths.
func (r *Restore) selectPaths() error {
	sn := r.spec.Snapshot
	if len(r.spec.Paths) == 0 {
		return nil
	}
	if sn == nil || sn.Snapshot.Strategy != snapshots.Volume {
		return fmt.Errorf("paths select files of an incremental volume backup (snapshot:ID); %s restores whole", r.Manifest.Artifact)
	}
	for _, p := range r.spec.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("path %s: give the absolute path in the container", p)
		}
		sn.Paths = append(sn.Paths, strings.Trim(p, "/"))
	}
	return nil
}

// Snapshot is the snapshot the plan restores (nil: a full backup).
func (r *Restore) Snapshot() *SnapshotRestore { return r.spec.Snapshot }

// versionWarning warns when the server's major version differs from the backed-up one.
func versionWarning(ctx context.Context, c *containers.Container, m *artifact.Manifest, strat strategy.Strategy) []string {
	v, ok := strat.(strategy.Versioned)
	if !ok || m.Source["server_version"] == "" || !c.Running {
		return nil
	}
	have, err := v.ServerVersion(ctx, c)
	if err != nil || v.Major(have) == v.Major(m.Source["server_version"]) {
		return nil
	}
	return []string{fmt.Sprintf("the backup was made from %s server %s and %s runs %s: a dump usually restores into a newer major version, rarely into an older one",
		m.Strategy, m.Source["server_version"], c, have)}
}

// RestoreError is a failed restore, saying whether the service may be left partly restored.
type RestoreError struct {
	Err error
	// Partial is set when the restore failed after it began to change the service and the
	// engine could not undo it (MySQL, MongoDB, volumes): the data is neither the old nor
	// the backup's.
	Partial bool
	// State describes what is left, when Partial.
	State string
}

func (e *RestoreError) Error() string {
	if e.Partial {
		return e.Err.Error() + "; " + e.State
	}
	return e.Err.Error()
}
func (e *RestoreError) Unwrap() error { return e.Err }

// Run runs the planned restore: the artifact is verified completely (and its content
// checked) before the container is touched, then the same pinned bytes are applied.
func (r *Restore) Run(ctx context.Context) error {
	c, spec := r.Container, r.spec
	c.SetGuard(spec.Guard)
	var err error
	if spec.Snapshot != nil {
		err = r.runSnapshot(ctx)
	} else {
		err = pipeline.Restore(ctx, pipeline.RestoreRequest{Target: spec.Target, Manifest: r.Manifest, Container: c, Strategy: r.Strategy,
			Trusted: r.Trusted, Allowed: r.allowed, Identities: spec.Identities, Progress: spec.Progress, Applying: spec.Applying, Log: spec.Log})
	}
	if err == nil {
		return nil
	}
	re := &RestoreError{Err: err}
	if errors.Is(err, pipeline.ErrStarted) {
		if a, ok := r.Strategy.(strategy.Atomicity); ok && a.Interrupted() != "" {
			re.Partial, re.State = true, a.Interrupted()
		}
	}
	return re
}
