package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
)

// Restore is one restore made by the sidecar.
type Restore struct {
	ID          int64
	Project     string
	Service     string
	ArtifactKey string
	Target      string
	Container   string // the container restored into
	Strategy    string
	Status      control.Outcome // running, success, failed, interrupted
	// Partial: it failed or was interrupted after it began changing the service, which the
	// engine could not undo: the service is neither as before nor as the backup.
	Partial    bool
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string
}

// KeepRestores is how many restores the catalog keeps; older ones are dropped as new ones
// finish.
const KeepRestores = 1000

// StartRestore records a restore as running, before it stops anything.
func (c *Catalog) StartRestore(ctx context.Context, r Restore) (int64, error) {
	res, err := c.db.ExecContext(ctx, `INSERT INTO restores (project, service, artifact_key, target, container, strategy, status, started_at)
		VALUES (?, ?, ?, ?, ?, ?, 'running', ?)`, r.Project, r.Service, r.ArtifactKey, r.Target, r.Container, r.Strategy, stamp(r.StartedAt))
	if err != nil {
		return 0, fmt.Errorf("recording a restore of %s: %w", r.ArtifactKey, err)
	}
	return res.LastInsertId()
}

// FinishRestore records how a restore ended (success or failed).
func (c *Catalog) FinishRestore(ctx context.Context, r Restore) error {
	if r.Status != control.Success && r.Status != control.Failed {
		return fmt.Errorf("restore %d cannot finish as %q (success or failed)", r.ID, r.Status)
	}
	_, err := c.db.ExecContext(ctx, `UPDATE restores SET status = ?, finished_at = ?, error = ?, partial = ? WHERE id = ? AND status = 'running'`,
		r.Status, stamp(r.FinishedAt), r.Error, r.Partial, r.ID)
	if err != nil {
		return fmt.Errorf("recording the end of restore %d: %w", r.ID, err)
	}
	if _, err := c.db.ExecContext(ctx, `DELETE FROM restores WHERE status != 'running' AND id <= (SELECT id FROM restores ORDER BY id DESC LIMIT 1 OFFSET ?)`, KeepRestores); err != nil {
		return fmt.Errorf("dropping old restores: %w", err)
	}
	return nil
}

// RestoreApplying records that restore id begins to change its service.
func (c *Catalog) RestoreApplying(ctx context.Context, id int64) error {
	if _, err := c.db.ExecContext(ctx, `UPDATE restores SET applying = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("recording that restore %d begins: %w", id, err)
	}
	return nil
}

// InterruptRestores marks the restores a crash left running as interrupted and returns them;
// partial tells from a restore's strategy whether an interruption may have left it partly
// applied — if it had begun to change the service (RestoreApplying).
func (c *Catalog) InterruptRestores(ctx context.Context, at time.Time, partial func(strategy string) bool) ([]Restore, error) {
	var out []Restore
	err := c.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, selectRestores+` WHERE status = 'running' ORDER BY id`)
		if err != nil {
			return err
		}
		if out, err = scanRestores(rows); err != nil {
			return err
		}
		applying := map[int64]bool{}
		arows, err := tx.QueryContext(ctx, `SELECT id FROM restores WHERE status = 'running' AND applying = 1`)
		if err != nil {
			return err
		}
		for arows.Next() {
			var id int64
			if err := arows.Scan(&id); err != nil {
				arows.Close()
				return err
			}
			applying[id] = true
		}
		arows.Close()
		if err := arows.Err(); err != nil {
			return err
		}
		for i, r := range out {
			out[i].Partial = applying[r.ID] && partial(r.Strategy)
			if _, err := tx.ExecContext(ctx, `UPDATE restores SET status = 'interrupted', finished_at = ?, partial = ?,
				error = 'interrupted: the sidecar stopped during the restore' WHERE id = ?`, stamp(at), out[i].Partial, r.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recovering interrupted restores: %w", err)
	}
	for i := range out {
		out[i].Status = control.Interrupted
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

// LatestRestores returns the newest restore of each service, newest first, at most limit.
func (c *Catalog) LatestRestores(ctx context.Context, limit int) ([]Restore, error) {
	rows, err := c.db.QueryContext(ctx, selectRestores+` r WHERE id = (SELECT max(id) FROM restores WHERE project = r.project AND service = r.service)
		ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing restores: %w", err)
	}
	return scanRestores(rows)
}

const selectRestores = `SELECT id, project, service, artifact_key, target, container, strategy, status, partial, started_at,
	COALESCE(finished_at, ''), COALESCE(error, '') FROM restores`

func scanRestores(rows *sql.Rows) ([]Restore, error) {
	defer rows.Close()
	var out []Restore
	for rows.Next() {
		var r Restore
		var started, finished string
		if err := rows.Scan(&r.ID, &r.Project, &r.Service, &r.ArtifactKey, &r.Target, &r.Container, &r.Strategy, &r.Status, &r.Partial, &started, &finished, &r.Error); err != nil {
			return nil, err
		}
		r.StartedAt, r.FinishedAt = parseStamp(started), parseStamp(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}
