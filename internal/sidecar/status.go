package sidecar

import (
	"context"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/version"
)

// Status describes the jobs and what could not be configured.
func (d *Daemon) Status(ctx context.Context) (*control.Status, error) {
	d.mu.Lock()
	jobs := make([]*job, 0, len(d.jobs))
	for _, k := range sortedKeys(d.jobs) {
		jobs = append(jobs, d.jobs[k])
	}
	st := &control.Status{Version: version.Version, Host: d.host, Scope: d.scope(), Started: d.started,
		Problems: append([]string(nil), d.problems...), Unscheduled: append([]string(nil), d.unscheduled...), EventsConnected: d.events.Load(), LastReconcile: d.lastSync}
	d.mu.Unlock()
	for _, n := range d.cfg.TargetNames() {
		st.Targets = append(st.Targets, control.TargetInfo{Name: n, URL: d.targets[n].String()})
	}
	restores, err := d.cat.Restores(ctx, 5)
	if err != nil {
		return nil, err
	}
	for _, r := range restores {
		st.Restores = append(st.Restores, control.RestoreInfo{Project: r.Project, Service: r.Service, Key: r.ArtifactKey, Target: r.Target,
			Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error})
	}
	for _, j := range jobs {
		js := control.JobStatus{Project: j.Project, Service: j.Service, Job: j.Name, Container: j.Container, Strategy: j.Strategy,
			Schedule: j.Schedule, Target: j.target(), Stop: j.Stop, Pre: j.Pre, Post: j.Post, Next: d.sched.Next(j.Key()), Running: len(j.running) > 0}
		if j.Retention != (retention.Policy{}) {
			js.Retention = j.Retention.String()
		}
		if s, err := schedule.Parse(j.Schedule); err == nil {
			js.ScheduleText = s.Describe()
		}
		runs, err := d.cat.Runs(ctx, j.ID, 50)
		if err != nil {
			return nil, err
		}
		for i, r := range runs {
			info := runInfo(r)
			if i == 0 {
				js.Last = info
			}
			if r.Status == catalog.Success {
				js.LastSuccess = info
				break
			}
		}
		if js.Runs, err = d.cat.Counts(ctx, j.ID); err != nil {
			return nil, err
		}
		st.Jobs = append(st.Jobs, js)
	}
	return st, nil
}

func runInfo(r catalog.Run) *control.RunInfo {
	return &control.RunInfo{ID: r.ID, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Size: r.Size, Key: r.ArtifactKey, Error: r.Error}
}
