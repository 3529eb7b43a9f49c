// Package control is the protocol between the docker-backup plugin and a running sidecar.
// The plugin never opens a port: it runs `/sidecar ctl METHOD PATH [BODY]` inside the sidecar
// container (docker exec), which forwards the request to the sidecar's Unix socket and
// writes the answer to its standard output. Answers are JSON; long operations (run, restore)
// stream one Event per line and end with a Result or an Error.
package control

import "time"

// Codes classify a failed request, so that the plugin acts on a code, never on error text.
const (
	CodeNotFound  = "not_found" // no such job, service, backup or target
	CodeBusy      = "busy"      // the service is being backed up or restored now
	CodeCorrupt   = "corrupt"   // the artifact does not match its manifest
	CodeUntrusted = "untrusted" // the manifest's origin cannot be proved (unsigned, other key)
	CodeRefused   = "refused"   // the backup does not fit the service (kind, service, paths)
	CodePartial   = "partial"   // the restore failed after it began changing the service
	CodeInvalid   = "invalid"   // a malformed request
	CodeFailed    = "failed"    // any other failure
)

// Outcome is how a run, restore or verify stands: what the catalog records, the status
// shows and the metrics count.
type Outcome string

// Outcomes.
const (
	Running     Outcome = "running"
	Success     Outcome = "success"
	Failed      Outcome = "failed" // a run or restore that failed; a verify whose backup did not restore
	Interrupted Outcome = "interrupted"
	Passed      Outcome = "passed" // a verify whose every check passed
	Errored     Outcome = "error"  // a verify that could not run (no backup, the scratch copy did not start)
)

// Error is a failed request as the plugin receives it.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Paths of the control API.
const (
	PathStatus  = "/v1/status"
	PathBackups = "/v1/backups"
	PathRun     = "/v1/run"
	PathRestore = "/v1/restore"
	PathVerify  = "/v1/verify"
	PathCatalog = "/v1/catalog/backup"
	PathRebuild = "/v1/catalog/rebuild"
)

// SocketName is the control socket's file name in the sidecar's state directory.
const SocketName = "control.sock"

// Status is the sidecar's state: its jobs and what it could not configure.
type Status struct {
	Version string `json:"version"`
	Host    string `json:"host"`
	// Node is the Swarm node the sidecar runs on; empty outside Swarm.
	Node string `json:"node,omitempty"`
	// Project is the compose project managed; AllProjects: every project on the host.
	Project     string    `json:"project,omitempty"`
	AllProjects bool      `json:"all_projects"`
	Started     time.Time `json:"started"`
	SigningKey  string    `json:"signing_key"` // the ID of the key manifests are signed with
	// PublicKey is the signing key's public half, as trusted-key files list it.
	PublicKey string       `json:"public_key,omitempty"`
	Targets   []TargetInfo `json:"targets"`
	Jobs      []JobStatus  `json:"jobs"`
	Problems  []string     `json:"problems,omitempty"` // invalid labels, each naming container, label and value
	// Unscheduled lists the services enabled without a schedule: backed up by hand only.
	Unscheduled []string `json:"unscheduled,omitempty"`
	// Restores are the newest restores made through the sidecar.
	Restores []RestoreInfo `json:"restores,omitempty"`
	// Verifies are the newest verifies, of jobs or asked for by hand.
	Verifies []VerifyInfo `json:"verifies,omitempty"`
	// OneOff are the newest backups asked for by hand of services without a job.
	OneOff []RunInfo `json:"one_off,omitempty"`
	// Recovery lists what the sidecar still has to finish after a crash (containers to
	// start, unfinished uploads to remove): it retries until done.
	Recovery []string `json:"recovery,omitempty"`
	// Elsewhere lists the stack's replicated Swarm services whose backups another node's
	// sidecar makes (the node running their lowest-slot task).
	Elsewhere []ServiceNode `json:"elsewhere,omitempty"`
	// EventsConnected reports whether the Docker events stream is live.
	EventsConnected bool      `json:"events_connected"`
	LastReconcile   time.Time `json:"last_reconcile"`
}

// Scope names what the sidecar manages, for people.
func (s *Status) Scope() string {
	if s.AllProjects {
		return "all projects"
	}
	return "project " + s.Project
}

// TargetInfo names a target defined on the sidecar (its URL holds no secrets) and what it
// holds for the sidecar's scope, as last listed.
type TargetInfo struct {
	Name    string    `json:"name"`
	URL     string    `json:"url"`
	Backups int       `json:"backups"`
	Bytes   int64     `json:"bytes"`
	Listed  time.Time `json:"listed,omitzero"`
}

// JobID names a job, and is what metrics label it with.
type JobID struct {
	Project  string `json:"project"`
	Service  string `json:"service"`
	Job      string `json:"job"`
	Strategy string `json:"strategy"` // empty: detected at run time
	Target   string `json:"target"`
}

// ServiceNode is a service and the Swarm node that backs it up.
type ServiceNode struct {
	Service string `json:"service"` // project/service
	Node    string `json:"node"`
}

// JobStatus is one scheduled job.
type JobStatus struct {
	JobID
	Container string `json:"container"`
	// Node is the Swarm node whose sidecar runs the job; empty outside Swarm.
	Node         string `json:"node,omitempty"`
	Schedule     string `json:"schedule"`
	ScheduleText string `json:"schedule_text"` // "daily at 02:00"
	// Interval is the longest gap between two runs of the schedule: a backup older than
	// that is late.
	Interval  time.Duration `json:"interval"`
	Retention string        `json:"retention"` // empty: keep every backup
	// Untrusted counts the backups in the job's directory that no trusted key signed, as its
	// last retention run found them: retention never counts nor deletes them.
	Untrusted int  `json:"untrusted,omitempty"`
	Stop      bool `json:"stop"`
	// Incremental: the job's backups are snapshots in the target's repository.
	Incremental bool      `json:"incremental,omitempty"`
	Pre         []string  `json:"pre,omitempty"`  // argv run in the container before
	Post        []string  `json:"post,omitempty"` // ... and after
	Next        time.Time `json:"next,omitzero"`
	Running     bool      `json:"running"`
	Last        *RunInfo  `json:"last,omitempty"`
	LastSuccess *RunInfo  `json:"last_success,omitempty"`
	// LastFinished is the newest run that is not running (Last, unless a run is under way):
	// what the last-run metrics show, so that they do not vanish while the next one runs.
	LastFinished *RunInfo `json:"last_finished,omitempty"`
	// Runs counts the job's runs by status (success, failed, interrupted, running).
	Runs map[Outcome]int `json:"runs"`
	// Verify is the schedule on which the job's newest backup is verified ("" never), with
	// its longest gap and next time; LastVerify and LastVerifyPassed are its newest verify
	// and its newest that passed.
	Verify           string        `json:"verify,omitempty"`
	VerifyInterval   time.Duration `json:"verify_interval,omitempty"`
	NextVerify       time.Time     `json:"next_verify,omitzero"`
	LastVerify       *VerifyInfo   `json:"last_verify,omitempty"`
	LastVerifyPassed *VerifyInfo   `json:"last_verify_passed,omitempty"`
}

// VerifyInfo is one verify made by the sidecar.
type VerifyInfo struct {
	Project    string    `json:"project,omitempty"`
	Service    string    `json:"service,omitempty"`
	Job        string    `json:"job,omitempty"`
	Key        string    `json:"key"`
	Target     string    `json:"target"`
	Status     Outcome   `json:"status"` // running, passed, failed, error, interrupted
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Checks     int       `json:"checks"`
	Failed     int       `json:"failed"`
	// Summary is the first failed check, or why the verify could not run.
	Summary string `json:"summary,omitempty"`
}

// RunInfo is one run of a job as the catalog has it.
type RunInfo struct {
	ID         int64     `json:"id"`
	Project    string    `json:"project,omitempty"` // for one-off runs
	Service    string    `json:"service,omitempty"`
	Status     Outcome   `json:"status"` // running, success, failed, interrupted
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Size       int64     `json:"size,omitempty"`
	Key        string    `json:"key,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// RestoreInfo is one restore made through the sidecar.
type RestoreInfo struct {
	Project  string  `json:"project"`
	Service  string  `json:"service"`
	Key      string  `json:"key"`
	Target   string  `json:"target"`
	Strategy string  `json:"strategy,omitempty"`
	Status   Outcome `json:"status"` // running, success, failed, interrupted
	// Partial: it failed after it began changing the service, which could not be undone.
	Partial    bool      `json:"partial,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Backups is a target's listing.
type Backups struct {
	Target string `json:"target"`
	URL    string `json:"url"`
	// Backups are newest first; a backup's Untrusted says why the sidecar's keys do not vouch
	// for it (unsigned, signed with another key): it is restored only on request.
	Backups  []Backup `json:"backups"`
	Problems []string `json:"problems,omitempty"`
}

// Backup is one backup on a target, as its manifest says (artifact.Summary on the wire; see
// package control/wire).
type Backup struct {
	Key        string    `json:"artifact"` // the artifact's key on the target
	Project    string    `json:"project,omitempty"`
	Service    string    `json:"service,omitempty"`
	Job        string    `json:"job,omitempty"`
	Container  string    `json:"container,omitempty"`
	Strategy   string    `json:"strategy"`
	CreatedAt  time.Time `json:"created_at"`
	DurationMS int64     `json:"duration_ms"`
	Size       int64     `json:"size"`
	RawSize    int64     `json:"raw_size"`
	SHA256     string    `json:"sha256"`
	Encrypted  bool      `json:"encrypted,omitempty"`
	// KeyID names the key that signed the manifest ("" when unsigned).
	KeyID string `json:"key_id,omitempty"`
	// Untrusted says why no trusted key of the sidecar vouches for the backup.
	Untrusted string `json:"untrusted,omitempty"`
	// Snapshot marks an incremental backup (Key: snapshot:SHORTID; Size: what it added).
	Snapshot bool `json:"snapshot,omitempty"`
}

// RunRequest asks for a job to run now. Job empty: the service's only job, or an unscheduled
// backup with the detected strategy when the service has none.
type RunRequest struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Job     string `json:"job,omitempty"`
	// Incremental makes this run's backup a snapshot in the target's repository, whatever the
	// job's label says.
	Incremental bool `json:"incremental,omitempty"`
}

// RestoreRequest asks the sidecar to restore a backup into a service.
type RestoreRequest struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Key     string `json:"key"` // a backup key, or "latest" for the service's newest
	Target  string `json:"target,omitempty"`
	NoStop  bool   `json:"no_stop,omitempty"`
	// AllowUnsigned restores a backup whose manifest the sidecar's key does not vouch for.
	AllowUnsigned bool `json:"allow_unsigned,omitempty"`
}

// VerifyRequest asks the sidecar to verify a backup of a service in a scratch copy of it.
type VerifyRequest struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Key     string `json:"key"` // a backup key, or "latest" for the service's newest
	Target  string `json:"target,omitempty"`
	// AllowUnsigned verifies a backup whose manifest the sidecar's key does not vouch for.
	AllowUnsigned bool `json:"allow_unsigned,omitempty"`
}

// Event is one line of a streamed answer: a log line, then finally a result or an error.
type Event struct {
	Time    time.Time `json:"time,omitzero"`
	Level   string    `json:"level,omitempty"`
	Message string    `json:"msg,omitempty"`
	Result  *Result   `json:"result,omitempty"`
	Error   string    `json:"error,omitempty"`
	Code    string    `json:"code,omitempty"` // with Error
}

// Result ends a successful run or restore.
type Result struct {
	Key      string        `json:"key"`
	Target   string        `json:"target"`
	Duration time.Duration `json:"duration"`
	// Backup is the backup made or restored (its manifest's fields of the same names).
	Backup *Backup  `json:"manifest,omitempty"`
	Pruned []string `json:"pruned,omitempty"`
	// Warnings are what the user should know (versions, an unsigned backup restored).
	Warnings []string `json:"warnings,omitempty"`
	// Verify is the report of a verify (which ran: it may not have passed).
	Verify *VerifyReport `json:"verify,omitempty"`
}

// VerifyReport is the outcome of a verify that ran (verify.Report on the wire).
type VerifyReport struct {
	Backup   string        `json:"backup"`
	Service  string        `json:"service"`
	Strategy string        `json:"strategy"`
	Image    string        `json:"image"`
	ImageID  string        `json:"image_id"`
	Started  time.Time     `json:"started"`
	Duration float64       `json:"duration_seconds"`
	Passed   bool          `json:"passed"`
	Checks   []VerifyCheck `json:"checks"`
	Notes    []string      `json:"notes,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// VerifyCheck is one comparison of a verify: what the backup recorded, what the restored
// copy holds.
type VerifyCheck struct {
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
	Passed   bool   `json:"passed"`
	Note     string `json:"note,omitempty"`
}
