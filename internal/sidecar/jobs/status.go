package jobs

import (
	"context"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
)

// Status fills in the jobs, targets, restores, one-off runs and pending recovery of st.
func (r *Runner) Status(ctx context.Context, st *control.Status) error {
	r.mu.Lock()
	for _, n := range r.TargetNames() {
		info, ok := r.usage[n]
		if !ok {
			info = control.TargetInfo{Name: n, URL: r.opts.Targets[n].String()}
		}
		st.Targets = append(st.Targets, info)
	}
	r.mu.Unlock()
	restores, err := r.opts.Catalog.LatestRestores(ctx, 1000)
	if err != nil {
		return err
	}
	for _, rs := range restores {
		st.Restores = append(st.Restores, control.RestoreInfo{Project: rs.Project, Service: rs.Service, Key: rs.ArtifactKey, Target: rs.Target,
			Strategy: rs.Strategy, Status: rs.Status, Partial: rs.Partial, StartedAt: rs.StartedAt, FinishedAt: rs.FinishedAt, Error: rs.Error})
	}
	oneOff, jobs, err := r.opts.Catalog.ManualRuns(ctx, 5)
	if err != nil {
		return err
	}
	byID := map[int64]catalog.Job{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	for _, run := range oneOff {
		info := runInfo(run)
		info.Project, info.Service = byID[run.JobID].Project, byID[run.JobID].Service
		st.OneOff = append(st.OneOff, *info)
	}
	st.Recovery = r.recovery.Pending()
	verifies, err := r.opts.Catalog.Verifies(ctx, 10)
	if err != nil {
		return err
	}
	for _, v := range verifies {
		st.Verifies = append(st.Verifies, *verifyInfo(&v))
	}
	for _, j := range r.Jobs() {
		js := control.JobStatus{JobID: j.ID(), Container: j.Container, Node: j.Node, Schedule: j.Schedule, Stop: j.Stop, Incremental: j.Incremental,
			Pre: j.Pre, Post: j.Post, Next: r.opts.Scheduler.Next(j.runKey()), Running: r.Running(j)}
		if j.Retention != (retention.Policy{}) {
			js.Retention = j.Retention.String()
		}
		r.mu.Lock()
		js.Untrusted = r.untrusted[j.Key()]
		r.mu.Unlock()
		if s, err := schedule.Parse(j.Schedule); err == nil {
			js.ScheduleText = s.Describe()
			js.Interval = s.Interval(time.Now())
		}
		runs, err := r.opts.Catalog.Runs(ctx, j.catalogID, 50)
		if err != nil {
			return err
		}
		for i, run := range runs {
			info := runInfo(run)
			if i == 0 {
				js.Last = info
			}
			if js.LastFinished == nil && run.Status != control.Running {
				js.LastFinished = info
			}
			if run.Status == control.Success {
				js.LastSuccess = info
				break
			}
		}
		if js.Runs, err = r.opts.Catalog.Counts(ctx, j.catalogID); err != nil {
			return err
		}
		if j.Verify != "" {
			js.Verify, js.NextVerify = j.Verify, r.opts.Scheduler.Next(verifyKey(j.Key()))
			if s, err := schedule.Parse(j.Verify); err == nil {
				js.VerifyInterval = s.Interval(time.Now())
			}
		}
		last, passed, err := r.opts.Catalog.LastVerifies(ctx, j.Project, j.Service, j.Name)
		if err != nil {
			return err
		}
		js.LastVerify, js.LastVerifyPassed = verifyInfo(last), verifyInfo(passed)
		st.Jobs = append(st.Jobs, js)
	}
	return nil
}

func runInfo(r catalog.Run) *control.RunInfo {
	return &control.RunInfo{ID: r.ID, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Size: r.Size, Key: r.ArtifactKey, Error: r.Error}
}

func verifyInfo(v *catalog.Verify) *control.VerifyInfo {
	if v == nil {
		return nil
	}
	return &control.VerifyInfo{Project: v.Project, Service: v.Service, Job: v.Job, Key: v.ArtifactKey, Target: v.Target, Status: v.Status,
		StartedAt: v.StartedAt, FinishedAt: v.FinishedAt, Checks: v.Checks, Failed: v.Failed, Summary: v.Summary}
}
