package sidecar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/snapshots"
)

// checkJobName is the scheduler's name of the repositories' check.
const checkJobName = "repository-check"

// checkRecorder is what the metrics count of checks (metrics.Metrics).
type checkRecorder interface {
	RepositoryChecked(target, result string, problems int, at time.Time)
}

// checkRepositories checks the snapshot repository of every target that has one (with
// DOCKER_BACKUP_CHECK_READ_DATA of its packs read), counts each result in the metrics and
// notifies a check that found problems or could not run.
func (d *Daemon) checkRepositories(ctx context.Context) error {
	var errs []error
	for _, name := range d.cfg.TargetNames() {
		r, err := snapshots.Open(ctx, d.targets[name], d.repoKeys(), repo.Access{Trust: d.keys, Log: d.log})
		if errors.Is(err, snapshots.ErrNone) {
			continue
		}
		result, problems := "error", 0
		var res *repo.CheckResult
		if err == nil {
			res, err = r.Check(ctx, d.cfg.CheckReadData)
		}
		switch {
		case res != nil && err != nil:
			result, problems = "failed", len(res.Problems)
		case err == nil:
			result = "passed"
			d.log.Info("repository check passed", "target", name, "snapshots", res.Snapshots, "packs", res.Packs, "read_packs", res.ReadPacks)
		}
		if d.recorder != nil {
			d.recorder.RepositoryChecked(name, result, problems, time.Now())
		}
		if err != nil {
			err = fmt.Errorf("check of the snapshot repository on target %s: %s: %w", name, result, err)
			d.log.Error("repository check did not pass", "target", name, "result", result, "problems", problems, "error", err)
			d.notifier.Notify("", notify.Event{Kind: "check", Project: d.cfg.Project, Target: name, Failed: true, Error: err.Error(), Time: time.Now()})
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
