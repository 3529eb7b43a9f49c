package sidecar

import "time"

// JobInfo is a job as metrics see it: bounded labels only.
type JobInfo struct {
	Project, Service, Job, Strategy, Target string
}

// RunOutcome is how a run ended.
type RunOutcome struct {
	Success  bool
	Started  time.Time
	Duration time.Duration
	Size     int64 // bytes stored
}

// Observer is told what the sidecar does; the metrics implement it.
type Observer interface {
	// Configured reports the jobs now scheduled and how many label problems there are.
	Configured(jobs []JobInfo, problems int)
	JobScheduled(j JobInfo, next time.Time, spec string)
	JobRemoved(j JobInfo)
	// History gives a newly scheduled job's last run and last success from the catalog, so
	// that a restart of the sidecar does not forget them; nil when there is none.
	History(j JobInfo, last, lastSuccess *RunOutcome)
	RunStarted(j JobInfo)
	RunFinished(j JobInfo, o RunOutcome)
	// Pruned reports a prune of one job's backups on a target: what it deleted and whether it failed.
	Pruned(target string, deleted int, failed bool)
	// TargetUsage reports what a target holds under the sidecar's prefix.
	TargetUsage(target string, backups int, bytes int64)
	EventsConnected(bool)
}

type nopObserver struct{}

func (nopObserver) Configured([]JobInfo, int)                 {}
func (nopObserver) JobScheduled(JobInfo, time.Time, string)   {}
func (nopObserver) JobRemoved(JobInfo)                        {}
func (nopObserver) RunStarted(JobInfo)                        {}
func (nopObserver) RunFinished(JobInfo, RunOutcome)           {}
func (nopObserver) Pruned(string, int, bool)                  {}
func (nopObserver) TargetUsage(string, int, int64)            {}
func (nopObserver) EventsConnected(bool)                      {}
func (nopObserver) History(JobInfo, *RunOutcome, *RunOutcome) {}
