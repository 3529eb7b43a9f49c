package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Restore is one restore made by the sidecar.
type Restore struct {
	ID          int64
	Project     string
	Service     string
	ArtifactKey string
	Target      string
	Container   string // the container restored into: a crash mid-restore must start it again
	Status      string // running, success, failed, interrupted
	StartedAt   time.Time
	FinishedAt  time.Time
	Error       string
}

// StartRestore records a restore as running, before it stops anything.
func (c *Catalog) StartRestore(ctx context.Context, r Restore) (int64, error) {
	res, err := c.db.ExecContext(ctx, `INSERT INTO restores (project, service, artifact_key, target, container, status, started_at)
		VALUES (?, ?, ?, ?, ?, 'running', ?)`, r.Project, r.Service, r.ArtifactKey, r.Target, r.Container, stamp(r.StartedAt))
	if err != nil {
		return 0, fmt.Errorf("recording a restore of %s: %w", r.ArtifactKey, err)
	}
	return res.LastInsertId()
}

// FinishRestore records how a restore ended (success or failed).
func (c *Catalog) FinishRestore(ctx context.Context, r Restore) error {
	if r.Status != Success && r.Status != Failed {
		return fmt.Errorf("restore %d cannot finish as %q (success or failed)", r.ID, r.Status)
	}
	_, err := c.db.ExecContext(ctx, `UPDATE restores SET status = ?, finished_at = ?, error = ? WHERE id = ? AND status = 'running'`,
		r.Status, stamp(r.FinishedAt), r.Error, r.ID)
	if err != nil {
		return fmt.Errorf("recording the end of restore %d: %w", r.ID, err)
	}
	return nil
}

// InterruptRestores marks the restores a crash left running as interrupted and returns them,
// so that their containers are started again.
func (c *Catalog) InterruptRestores(ctx context.Context, at time.Time) ([]Restore, error) {
	var out []Restore
	err := c.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, selectRestores+` WHERE status = 'running' ORDER BY id`)
		if err != nil {
			return err
		}
		if out, err = scanRestores(rows); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE restores SET status = 'interrupted', finished_at = ?,
			error = 'interrupted: the sidecar stopped during the restore' WHERE status = 'running'`, stamp(at))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recovering interrupted restores: %w", err)
	}
	for i := range out {
		out[i].Status = Interrupted
	}
	return out, nil
}

// Restores returns the newest restores, at most limit.
func (c *Catalog) Restores(ctx context.Context, limit int) ([]Restore, error) {
	rows, err := c.db.QueryContext(ctx, selectRestores+` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing restores: %w", err)
	}
	return scanRestores(rows)
}

const selectRestores = `SELECT id, project, service, artifact_key, target, container, status, started_at,
	COALESCE(finished_at, ''), COALESCE(error, '') FROM restores`

func scanRestores(rows *sql.Rows) ([]Restore, error) {
	defer rows.Close()
	var out []Restore
	for rows.Next() {
		var r Restore
		var started, finished string
		if err := rows.Scan(&r.ID, &r.Project, &r.Service, &r.ArtifactKey, &r.Target, &r.Container, &r.Status, &started, &finished, &r.Error); err != nil {
			return nil, err
		}
		r.StartedAt, r.FinishedAt = parseStamp(started), parseStamp(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}
