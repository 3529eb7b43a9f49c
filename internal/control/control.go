// Package control is the protocol between the docker-backup plugin and a running sidecar.
// The plugin never opens a port: it runs `/sidecar ctl METHOD PATH [BODY]` inside the sidecar
// container (docker exec), which forwards the request to the sidecar's Unix socket and
// writes the answer to its standard output. Answers are JSON; long operations (run, restore)
// stream one Event per line and end with a Result or an Error.
package control

import (
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// Paths of the control API.
const (
	PathStatus  = "/v1/status"
	PathBackups = "/v1/backups"
	PathRun     = "/v1/run"
	PathRestore = "/v1/restore"
	PathCatalog = "/v1/catalog/backup"
	PathRebuild = "/v1/catalog/rebuild"
)

// SocketName is the control socket's file name in the sidecar's state directory.
const SocketName = "control.sock"

// Status is the sidecar's state: its jobs and what it could not configure.
type Status struct {
	Version  string       `json:"version"`
	Host     string       `json:"host"`
	Scope    string       `json:"scope"` // the compose project managed, or "all projects"
	Started  time.Time    `json:"started"`
	Targets  []TargetInfo `json:"targets"`
	Jobs     []JobStatus  `json:"jobs"`
	Problems []string     `json:"problems,omitempty"` // invalid labels, each naming container, label and value
	// Unscheduled lists the services enabled without a schedule: backed up by hand only.
	Unscheduled []string `json:"unscheduled,omitempty"`
	// Restores are the newest restores made through the sidecar.
	Restores []RestoreInfo `json:"restores,omitempty"`
	// EventsConnected reports whether the Docker events stream is live.
	EventsConnected bool      `json:"events_connected"`
	LastReconcile   time.Time `json:"last_reconcile"`
}

// TargetInfo names a target defined on the sidecar (its URL holds no secrets).
type TargetInfo struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// JobStatus is one scheduled job.
type JobStatus struct {
	Project      string    `json:"project"`
	Service      string    `json:"service"`
	Job          string    `json:"job"`
	Container    string    `json:"container"`
	Strategy     string    `json:"strategy"` // empty: detected at run time
	Schedule     string    `json:"schedule"`
	ScheduleText string    `json:"schedule_text"` // "daily at 02:00"
	Retention    string    `json:"retention"`     // empty: keep every backup
	Target       string    `json:"target"`
	Stop         bool      `json:"stop"`
	Pre          []string  `json:"pre,omitempty"`  // argv run in the container before
	Post         []string  `json:"post,omitempty"` // ... and after
	Next         time.Time `json:"next,omitzero"`
	Running      bool      `json:"running"`
	Last         *RunInfo  `json:"last,omitempty"`
	LastSuccess  *RunInfo  `json:"last_success,omitempty"`
	// Runs counts the job's runs by status (success, failed, interrupted, running).
	Runs map[string]int `json:"runs"`
}

// RunInfo is one run of a job as the catalog has it.
type RunInfo struct {
	ID         int64     `json:"id"`
	Status     string    `json:"status"` // running, success, failed, interrupted
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Size       int64     `json:"size,omitempty"`
	Key        string    `json:"key,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// RestoreInfo is one restore made through the sidecar.
type RestoreInfo struct {
	Project    string    `json:"project"`
	Service    string    `json:"service"`
	Key        string    `json:"key"`
	Target     string    `json:"target"`
	Status     string    `json:"status"` // running, success, failed, interrupted
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Backups is a target's listing.
type Backups struct {
	Target   string               `json:"target"`
	URL      string               `json:"url"`
	Backups  []*artifact.Manifest `json:"backups"`
	Problems []string             `json:"problems,omitempty"`
}

// RunRequest asks for a job to run now. Job empty: the service's only job, or an unscheduled
// backup with the detected strategy when the service has none.
type RunRequest struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Job     string `json:"job,omitempty"`
}

// RestoreRequest asks the sidecar to restore a backup into a service.
type RestoreRequest struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Key     string `json:"key"` // a backup key, or "latest" for the service's newest
	Target  string `json:"target,omitempty"`
	NoStop  bool   `json:"no_stop,omitempty"`
}

// Event is one line of a streamed answer: a log line, then finally a result or an error.
type Event struct {
	Time    time.Time `json:"time,omitzero"`
	Level   string    `json:"level,omitempty"`
	Message string    `json:"msg,omitempty"`
	Result  *Result   `json:"result,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Result ends a successful run or restore.
type Result struct {
	Key      string             `json:"key"`
	Target   string             `json:"target"`
	Duration time.Duration      `json:"duration"`
	Manifest *artifact.Manifest `json:"manifest,omitempty"`
	Pruned   []string           `json:"pruned,omitempty"`
}
