package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

// Verify is one verify made by the sidecar.
type Verify struct {
	ID          int64
	Project     string
	Service     string
	Job         string // the job whose backup it is; ManualJob for one asked by hand
	ArtifactKey string
	Target      string
	Status      control.Outcome // running, passed, failed, error, interrupted
	StartedAt   time.Time
	FinishedAt  time.Time
	Checks      int    // checks made
	Failed      int    // of which failed
	Summary     string // the first failed check, or the error
}

// KeepVerifies is how many verifies the catalog keeps.
const KeepVerifies = 1000

// StartVerify records a verify as running.
func (c *Catalog) StartVerify(ctx context.Context, v Verify) (int64, error) {
	res, err := c.db.ExecContext(ctx, `INSERT INTO verifies (project, service, job, artifact_key, target, status, started_at)
		VALUES (?, ?, ?, ?, ?, 'running', ?)`, v.Project, v.Service, v.Job, v.ArtifactKey, v.Target, stamp(v.StartedAt))
	if err != nil {
		return 0, fmt.Errorf("recording a verify of %s: %w", v.ArtifactKey, err)
	}
	return res.LastInsertId()
}

// FinishVerify records how a verify ended (passed, failed or error).
func (c *Catalog) FinishVerify(ctx context.Context, v Verify) error {
	if v.Status != control.Passed && v.Status != control.Failed && v.Status != control.Errored {
		return fmt.Errorf("verify %d cannot finish as %q (passed, failed or error)", v.ID, v.Status)
	}
	_, err := c.db.ExecContext(ctx, `UPDATE verifies SET status = ?, finished_at = ?, checks = ?, failed = ?, summary = ?, artifact_key = ?
		WHERE id = ? AND status = 'running'`, v.Status, stamp(v.FinishedAt), v.Checks, v.Failed, v.Summary, v.ArtifactKey, v.ID)
	if err != nil {
		return fmt.Errorf("recording the end of verify %d: %w", v.ID, err)
	}
	if _, err := c.db.ExecContext(ctx, `DELETE FROM verifies WHERE status != 'running' AND id <= (SELECT id FROM verifies ORDER BY id DESC LIMIT 1 OFFSET ?)`, KeepVerifies); err != nil {
		return fmt.Errorf("dropping old verifies: %w", err)
	}
	return nil
}

// InterruptVerifies marks the verifies a crash left running as interrupted.
func (c *Catalog) InterruptVerifies(ctx context.Context, at time.Time) (int64, error) {
	res, err := c.db.ExecContext(ctx, `UPDATE verifies SET status = 'interrupted', finished_at = ?,
		summary = 'interrupted: the sidecar stopped during the verify' WHERE status = 'running'`, stamp(at))
	if err != nil {
		return 0, fmt.Errorf("recovering interrupted verifies: %w", err)
	}
	return res.RowsAffected()
}

// LastVerifies returns, for one job, its newest verify and its newest passed one (either
// may be nil).
func (c *Catalog) LastVerifies(ctx context.Context, project, service, job string) (last, passed *Verify, err error) {
	for _, q := range []struct {
		where string
		dst   **Verify
	}{{"", &last}, {" AND status = 'passed'", &passed}} {
		rows, err := c.db.QueryContext(ctx, selectVerifies+` WHERE project = ? AND service = ? AND job = ?`+q.where+` ORDER BY id DESC LIMIT 1`, project, service, job)
		if err != nil {
			return nil, nil, fmt.Errorf("reading verifies: %w", err)
		}
		vs, err := scanVerifies(rows)
		if err != nil {
			return nil, nil, err
		}
		if len(vs) > 0 {
			*q.dst = &vs[0]
		}
	}
	return last, passed, nil
}

// Verifies returns the newest verifies, at most limit.
func (c *Catalog) Verifies(ctx context.Context, limit int) ([]Verify, error) {
	rows, err := c.db.QueryContext(ctx, selectVerifies+` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing verifies: %w", err)
	}
	return scanVerifies(rows)
}

const selectVerifies = `SELECT id, project, service, job, artifact_key, target, status, started_at, COALESCE(finished_at, ''),
	checks, failed, summary FROM verifies`

func scanVerifies(rows *sql.Rows) ([]Verify, error) {
	defer rows.Close()
	var out []Verify
	for rows.Next() {
		var v Verify
		var started, finished string
		if err := rows.Scan(&v.ID, &v.Project, &v.Service, &v.Job, &v.ArtifactKey, &v.Target, &v.Status, &started, &finished, &v.Checks, &v.Failed, &v.Summary); err != nil {
			return nil, err
		}
		v.StartedAt, v.FinishedAt = parseStamp(started), parseStamp(finished)
		out = append(out, v)
	}
	return out, rows.Err()
}
