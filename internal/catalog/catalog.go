// Package catalog records backup jobs and their runs in SQLite (modernc.org/sqlite: pure Go,
// so the sidecar stays a static binary). It opens the database in WAL mode with a busy
// timeout and immediate transactions, applies versioned migrations, turns runs that a crash
// left "running" into "interrupted", and makes consistent copies of itself with VACUUM INTO.
// The catalog holds no secrets: errors stored in it are the ones shown to users.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// ManualJob is the catalog's name for the one-off backups of a service asked for by hand
// (no label job name can be written like it).
const ManualJob = "(manual)"

// migrations are applied in order; the database's user_version is how many have run.
var migrations = []string{
	`CREATE TABLE jobs (
		id         INTEGER PRIMARY KEY,
		project    TEXT NOT NULL,
		service    TEXT NOT NULL,
		name       TEXT NOT NULL,
		strategy   TEXT NOT NULL DEFAULT '',
		schedule   TEXT NOT NULL DEFAULT '',
		target     TEXT NOT NULL DEFAULT '',
		updated_at TEXT NOT NULL,
		UNIQUE (project, service, name)
	);
	CREATE TABLE runs (
		id                INTEGER PRIMARY KEY,
		job_id            INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
		status            TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
		started_at        TEXT NOT NULL,
		finished_at       TEXT,
		size_bytes        INTEGER,
		sha256            TEXT,
		artifact_key      TEXT,
		error             TEXT,
		stopped_container TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX runs_by_job ON runs (job_id, started_at DESC);
	CREATE INDEX runs_by_status ON runs (status);`,
	// 2: a backup is recorded once, so that rebuilding from the target's manifests is idempotent.
	`CREATE UNIQUE INDEX runs_by_artifact ON runs (artifact_key) WHERE status = 'success' AND artifact_key != '';`,
	// 3: a failed run whose unfinished upload could not be removed then (the storage was down).
	`ALTER TABLE runs ADD COLUMN cleanup TEXT NOT NULL DEFAULT '';`,
	// 4: restores, so that a crash during one starts its container again.
	`CREATE TABLE restores (
		id           INTEGER PRIMARY KEY,
		project      TEXT NOT NULL,
		service      TEXT NOT NULL,
		artifact_key TEXT NOT NULL,
		target       TEXT NOT NULL,
		container    TEXT NOT NULL,
		status       TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
		started_at   TEXT NOT NULL,
		finished_at  TEXT,
		error        TEXT
	);`,
	// 5: containers stopped by a run or restore, recorded just before each stop and removed
	// once started again: what recovery must start after a crash, and since when they were
	// stopped (a container stopped earlier by someone else is left alone). Restores record
	// their strategy and whether a failure left the service partly restored.
	`CREATE TABLE stops (
		id         INTEGER PRIMARY KEY,
		container  TEXT NOT NULL,
		name       TEXT NOT NULL,
		stopped_at TEXT NOT NULL,
		operation  TEXT NOT NULL
	);
	ALTER TABLE restores ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
	ALTER TABLE restores ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;`,
	// 6: verifies: a backup restored into a scratch copy of its service and compared.
	`CREATE TABLE verifies (
		id           INTEGER PRIMARY KEY,
		project      TEXT NOT NULL,
		service      TEXT NOT NULL,
		job          TEXT NOT NULL,
		artifact_key TEXT NOT NULL,
		target       TEXT NOT NULL,
		status       TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'error', 'interrupted')),
		started_at   TEXT NOT NULL,
		finished_at  TEXT,
		checks       INTEGER NOT NULL DEFAULT 0,
		failed       INTEGER NOT NULL DEFAULT 0,
		summary      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX verifies_by_job ON verifies (project, service, job, id DESC);`,
	// 7: a job with several targets records the same backup once per target (a member job
	// each): a backup is unique per job, not in the whole catalog.
	`DROP INDEX runs_by_artifact;
	CREATE UNIQUE INDEX runs_by_artifact ON runs (job_id, artifact_key) WHERE status = 'success' AND artifact_key != '';`,
	// 8: a restore records when it begins to change the service (the artifact verified): one
	// a crash cut before that left the service as it was.
	`ALTER TABLE restores ADD COLUMN applying INTEGER NOT NULL DEFAULT 0;`,
	// 9: a Swarm service scaled to 0 for a backup or restore instead of a stopped container:
	// its ID and the replica count to scale it back to.
	`ALTER TABLE stops ADD COLUMN service_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE stops ADD COLUMN replicas INTEGER NOT NULL DEFAULT 0;`,
}

// Catalog is an open catalog database.
type Catalog struct {
	db *sql.DB
}

// Open opens (creating if needed) the catalog at path and migrates it.
func Open(ctx context.Context, path string) (*Catalog, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", path, err)
	}
	c := &Catalog{db: db}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

func (c *Catalog) migrate(ctx context.Context) error {
	var version int
	if err := c.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("the catalog has schema version %d, newer than this build knows (%d): use a newer docker-backup", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		err := c.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// SchemaVersion reports how many migrations the database has.
func (c *Catalog) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := c.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (c *Catalog) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Job is a configured backup job.
type Job struct {
	ID                     int64
	Project, Service, Name string
	Strategy, Schedule     string
	Target                 string
}

// UpsertJob records a job (keyed by project, service and name) and returns its ID.
func (c *Catalog) UpsertJob(ctx context.Context, j Job) (int64, error) {
	var id int64
	err := c.db.QueryRowContext(ctx, `
		INSERT INTO jobs (project, service, name, strategy, schedule, target, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, service, name) DO UPDATE SET
			strategy = excluded.strategy, schedule = excluded.schedule, target = excluded.target,
			updated_at = excluded.updated_at
		RETURNING id`,
		j.Project, j.Service, j.Name, j.Strategy, j.Schedule, j.Target, stamp(time.Now())).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("recording job %s/%s/%s: %w", j.Project, j.Service, j.Name, err)
	}
	return id, nil
}

// Run is one execution of a job.
type Run struct {
	ID, JobID        int64
	Status           control.Outcome
	StartedAt        time.Time
	FinishedAt       time.Time // zero while running
	Size             int64
	SHA256           string
	ArtifactKey      string
	Error            string
	StoppedContainer string // a container this run stopped and must be started again
	// Cleanup is a key still to settle once the target answers: a failed run's unfinished
	// upload to remove, or an interrupted run's artifact — recorded as a success if its
	// manifest was written, else removed. Kept here, it outlives the next crash too.
	Cleanup string
}

// StartRun records a run of r.JobID as running from r.StartedAt. r.ArtifactKey is where the
// run will write and r.StoppedContainer the containers it is about to stop (IDs, comma
// separated, in the order to start them again): recovery after a crash removes the one and
// starts the others.
func (c *Catalog) StartRun(ctx context.Context, r Run) (int64, error) {
	res, err := c.db.ExecContext(ctx, `INSERT INTO runs (job_id, status, started_at, artifact_key, stopped_container) VALUES (?, ?, ?, ?, ?)`,
		r.JobID, control.Running, stamp(r.StartedAt), r.ArtifactKey, r.StoppedContainer)
	if err != nil {
		return 0, fmt.Errorf("recording a run of job %d: %w", r.JobID, err)
	}
	return res.LastInsertId()
}

// ImportRun records a finished successful run found on the target (rebuilding the catalog
// from manifests). A backup already recorded is skipped; it reports whether r was added.
func (c *Catalog) ImportRun(ctx context.Context, r Run) (bool, error) {
	res, err := c.db.ExecContext(ctx, `INSERT OR IGNORE INTO runs (job_id, status, started_at, finished_at, size_bytes, sha256, artifact_key)
		VALUES (?, 'success', ?, ?, ?, ?, ?)`, r.JobID, stamp(r.StartedAt), stamp(r.FinishedAt), r.Size, r.SHA256, r.ArtifactKey)
	if err != nil {
		return false, fmt.Errorf("importing backup %s: %w", r.ArtifactKey, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Jobs lists the recorded jobs, by project, service and name.
func (c *Catalog) Jobs(ctx context.Context) ([]Job, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, project, service, name, strategy, schedule, target FROM jobs ORDER BY project, service, name`)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.ID, &j.Project, &j.Service, &j.Name, &j.Strategy, &j.Schedule, &j.Target); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Counts returns how many runs a job has had, by status.
func (c *Catalog) Counts(ctx context.Context, jobID int64) (map[control.Outcome]int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT status, count(*) FROM runs WHERE job_id = ? GROUP BY status`, jobID)
	if err != nil {
		return nil, fmt.Errorf("counting runs of job %d: %w", jobID, err)
	}
	defer rows.Close()
	out := map[control.Outcome]int{}
	for rows.Next() {
		var s control.Outcome
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Ping checks that the database answers.
func (c *Catalog) Ping(ctx context.Context) error {
	var one int
	return c.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// KeepRuns is how many runs of each job the catalog keeps; older ones are dropped as new runs
// finish (runs still waiting for a clean-up are kept). The target's manifests stay the record
// of what backups exist.
const KeepRuns = 1000

// FinishRun records how a run ended. Only a running run can finish.
func (c *Catalog) FinishRun(ctx context.Context, r Run) error {
	if r.Status != control.Success && r.Status != control.Failed {
		return fmt.Errorf("run %d cannot finish as %q (success or failed)", r.ID, r.Status)
	}
	res, err := c.db.ExecContext(ctx, `
		UPDATE runs SET status = ?, finished_at = ?, size_bytes = ?, sha256 = ?, artifact_key = ?, error = ?, cleanup = ?
		WHERE id = ? AND status = 'running'`,
		r.Status, stamp(r.FinishedAt), r.Size, r.SHA256, r.ArtifactKey, r.Error, r.Cleanup, r.ID)
	if err != nil {
		return fmt.Errorf("recording the end of run %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("run %d is not running", r.ID)
	}
	_, err = c.db.ExecContext(ctx, `DELETE FROM runs WHERE job_id = (SELECT job_id FROM runs WHERE id = ?) AND cleanup = ''
		AND status != 'running' AND id < (SELECT min(id) FROM (SELECT id FROM runs WHERE job_id = (SELECT job_id FROM runs WHERE id = ?) ORDER BY id DESC LIMIT ?))`,
		r.ID, r.ID, KeepRuns)
	if err != nil {
		return fmt.Errorf("dropping old runs: %w", err)
	}
	return nil
}

// Interrupt marks every run still running as interrupted and returns them: at start-up,
// those are runs a crash cut short. In the same transaction each one's artifact key becomes
// its clean-up (PendingCleanups), so that settling it survives another crash. The caller
// starts their stopped containers again.
func (c *Catalog) Interrupt(ctx context.Context, at time.Time) ([]Run, error) {
	var runs []Run
	err := c.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, selectRuns+` WHERE status = 'running' ORDER BY id`)
		if err != nil {
			return err
		}
		runs, err = scanRuns(rows)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE runs SET status = 'interrupted', finished_at = ?,
			error = 'interrupted: the sidecar stopped during the run',
			cleanup = CASE WHEN COALESCE(artifact_key, '') != '' THEN artifact_key ELSE cleanup END
			WHERE status = 'running'`, stamp(at))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recovering interrupted runs: %w", err)
	}
	for i := range runs {
		runs[i].Status = control.Interrupted
		if runs[i].ArtifactKey != "" {
			runs[i].Cleanup = runs[i].ArtifactKey
		}
	}
	return runs, nil
}

// Runs returns a job's runs, newest first, at most limit.
func (c *Catalog) Runs(ctx context.Context, jobID int64, limit int) ([]Run, error) {
	rows, err := c.db.QueryContext(ctx, selectRuns+` WHERE job_id = ? ORDER BY started_at DESC, id DESC LIMIT ?`, jobID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing runs of job %d: %w", jobID, err)
	}
	return scanRuns(rows)
}

// PendingCleanups returns the runs with a key still to settle (Run.Cleanup): failed runs'
// unfinished uploads and interrupted runs' artifacts.
func (c *Catalog) PendingCleanups(ctx context.Context) ([]Run, error) {
	rows, err := c.db.QueryContext(ctx, selectRuns+` WHERE cleanup != '' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing pending clean-ups: %w", err)
	}
	return scanRuns(rows)
}

// CleanupDone records that a run's clean-up key was settled.
func (c *Catalog) CleanupDone(ctx context.Context, runID int64) error {
	if _, err := c.db.ExecContext(ctx, `UPDATE runs SET cleanup = '' WHERE id = ?`, runID); err != nil {
		return fmt.Errorf("recording the clean-up of run %d: %w", runID, err)
	}
	return nil
}

// Recovered records that an interrupted run had in fact finished: its manifest was written
// before the crash, so it is a success with the manifest's size and checksum, settled.
func (c *Catalog) Recovered(ctx context.Context, r Run) error {
	_, err := c.db.ExecContext(ctx, `UPDATE runs SET status = 'success', size_bytes = ?, sha256 = ?, cleanup = '',
		error = 'completed before the sidecar stopped (its manifest was written)' WHERE id = ? AND status = 'interrupted'`, r.Size, r.SHA256, r.ID)
	if err != nil {
		return fmt.Errorf("recording the recovery of run %d: %w", r.ID, err)
	}
	return nil
}

// Stop is a container an operation stopped and has not started again yet.
type Stop struct {
	ID        int64
	Container string // ID
	Name      string
	StoppedAt time.Time
	Operation string // what stopped it: "backup shop/db/default", "restore shop/db"
	// ServiceID is set for a Swarm service scaled to 0 (its task's container is Container):
	// Replicas is the count to scale it back to.
	ServiceID string
	Replicas  uint64
}

// Stopping records that a container is about to be stopped.
func (c *Catalog) Stopping(ctx context.Context, s Stop) (int64, error) {
	res, err := c.db.ExecContext(ctx, `INSERT INTO stops (container, name, stopped_at, operation, service_id, replicas) VALUES (?, ?, ?, ?, ?, ?)`,
		s.Container, s.Name, stamp(s.StoppedAt), s.Operation, s.ServiceID, int64(s.Replicas))
	if err != nil {
		return 0, fmt.Errorf("recording the stop of %s: %w", s.Name, err)
	}
	return res.LastInsertId()
}

// Started forgets a recorded stop: the container runs again.
func (c *Catalog) Started(ctx context.Context, id int64) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM stops WHERE id = ?`, id); err != nil {
		return fmt.Errorf("recording a start: %w", err)
	}
	return nil
}

// Stops lists the recorded stops: at start-up, containers a crash left stopped.
func (c *Catalog) Stops(ctx context.Context) ([]Stop, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, container, name, stopped_at, operation, service_id, replicas FROM stops ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("listing stopped containers: %w", err)
	}
	defer rows.Close()
	var out []Stop
	for rows.Next() {
		var s Stop
		var at string
		var replicas int64
		if err := rows.Scan(&s.ID, &s.Container, &s.Name, &at, &s.Operation, &s.ServiceID, &replicas); err != nil {
			return nil, err
		}
		s.Replicas = uint64(replicas)
		s.StoppedAt = parseStamp(at)
		out = append(out, s)
	}
	return out, rows.Err()
}

// ManualRuns returns the newest one-off runs of every service, at most limit.
func (c *Catalog) ManualRuns(ctx context.Context, limit int) ([]Run, []Job, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT r.id, r.job_id, r.status, r.started_at, COALESCE(r.finished_at, ''), COALESCE(r.size_bytes, 0),
		COALESCE(r.sha256, ''), COALESCE(r.artifact_key, ''), COALESCE(r.error, ''), r.stopped_container, r.cleanup
		FROM runs r JOIN jobs j ON j.id = r.job_id WHERE j.name = ? ORDER BY r.started_at DESC, r.id DESC LIMIT ?`, ManualJob, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("listing one-off runs: %w", err)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return nil, nil, err
	}
	jobs, err := c.Jobs(ctx)
	return runs, jobs, err
}

// Copy writes a consistent copy of the catalog to path (VACUUM INTO), for backing it up.
func (c *Catalog) Copy(ctx context.Context, path string) error {
	if strings.ContainsRune(path, 0) {
		return errors.New("invalid path")
	}
	if _, err := c.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("copying the catalog to %s: %w", path, err)
	}
	return nil
}

const selectRuns = `SELECT id, job_id, status, started_at, COALESCE(finished_at, ''), COALESCE(size_bytes, 0),
	COALESCE(sha256, ''), COALESCE(artifact_key, ''), COALESCE(error, ''), stopped_container, cleanup FROM runs`

func scanRuns(rows *sql.Rows) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started, finished string
		if err := rows.Scan(&r.ID, &r.JobID, &r.Status, &started, &finished, &r.Size, &r.SHA256, &r.ArtifactKey, &r.Error, &r.StoppedContainer, &r.Cleanup); err != nil {
			return nil, err
		}
		r.StartedAt = parseStamp(started)
		r.FinishedAt = parseStamp(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseStamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
