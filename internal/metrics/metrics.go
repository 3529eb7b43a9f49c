// Package metrics exports what the sidecar does as Prometheus metrics, on a registry of its
// own. The gauges that mirror state (last success, next run, target usage, label errors...)
// are computed at scrape time from the sidecar's status, so they are right after a restart
// and never drift; only counters and histograms are pushed, by the sidecar's runner (it
// implements jobs.Recorder). Labels are bounded: project, service, job, strategy and target
// for jobs, target for targets; never IDs, keys, error text or times. The series of a job that
// is gone are deleted.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ns = "docker_backup"

// jobLabels name a job's series. "backup_job", not "job": Prometheus sets "job" to the scrape job.
var jobLabels = []string{"project", "service", "backup_job", "strategy", "target"}

// StatusFunc returns the sidecar's status; it is called once per scrape.
type StatusFunc func(ctx context.Context) (*control.Status, error)

// Metrics is the sidecar's registry.
type Metrics struct {
	reg    *prometheus.Registry
	status StatusFunc
	ready  func(context.Context) error

	runs         *prometheus.CounterVec
	bytesWritten *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	pruneRuns    *prometheus.CounterVec
	pruneErrors  *prometheus.CounterVec
	pruned       *prometheus.CounterVec
	restores     *prometheus.CounterVec
	verifies     *prometheus.CounterVec
	notified     *prometheus.CounterVec
	checks       *prometheus.CounterVec
	checkPassed  *prometheus.GaugeVec
	checkIssues  *prometheus.GaugeVec

	mu   sync.Mutex
	jobs map[control.JobID]bool // jobs whose counter series exist
}

// New registers the metrics: status is read at each scrape, ready says whether the catalog
// answers.
func New(status StatusFunc, ready func(context.Context) error) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), status: status, ready: ready, jobs: map[control.JobID]bool{}}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runs_total", Help: "Runs of the job by result (success or failure)."},
		append(jobLabels[:len(jobLabels):len(jobLabels)], "result"))
	m.bytesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "written_bytes_total", Help: "Bytes stored on targets by the job's successful runs."}, jobLabels)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "run_duration_seconds", Help: "Duration of the job's runs.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800}}, jobLabels)
	tcounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, []string{"target"})
	}
	m.pruneRuns = tcounter("prune_runs_total", "Retention runs on the target.")
	m.pruneErrors = tcounter("prune_errors_total", "Retention runs on the target that failed to list or delete.")
	m.pruned = tcounter("pruned_backups_total", "Backups deleted by retention.")
	m.restores = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "restores_total",
		Help: "Restores through the sidecar by result: success, failure (nothing changed), partial (failed after changing the service, which could not be undone)."},
		[]string{"project", "service", "result"})
	m.verifies = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "verifies_total",
		Help: "Verifies by result: passed, failed (the backup does not restore to what it recorded), error (could not run), interrupted."},
		[]string{"project", "service", "result"})
	m.notified = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "notifications_total",
		Help: "Notifications (kind notify) and dead-man pings (kind ping) by result: sent, or failed after retries (the backup is not affected)."},
		[]string{"kind", "result"})
	for _, k := range []string{"notify", "ping"} {
		for _, r := range []string{"sent", "failed"} {
			m.notified.WithLabelValues(k, r)
		}
	}
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "repository_checks_total",
		Help: "Scheduled checks of the target's snapshot repository by result: passed, failed (problems found), error (could not run)."}, []string{"target", "result"})
	m.checkPassed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "repository_check_last_success_timestamp_seconds",
		Help: "When a check of the target's snapshot repository last passed (Unix time)."}, []string{"target"})
	m.checkIssues = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "repository_check_problems",
		Help: "Problems the last check of the target's snapshot repository found (missing or damaged packs, chunks, snapshots)."}, []string{"target"})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info", Help: "The sidecar's version; always 1."}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version.Version, runtime.Version()).Set(1)
	// The job counters are collected by the state collector, after it has brought their
	// series in step with the jobs of the same status.
	m.reg.MustRegister(m.pruneRuns, m.pruneErrors, m.pruned, m.restores, m.verifies, m.notified, m.checks, m.checkPassed, m.checkIssues, buildInfo,
		&stateCollector{m: m}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Values of the result label of runs and restores.
const (
	resultSuccess = "success"
	resultFailure = "failure"
	resultPartial = "partial"
)

func values(j control.JobID) []string {
	return []string{j.Project, j.Service, j.Job, j.Strategy, j.Target}
}

// Notified counts a notification or ping (kind "notify" or "ping").
func (m *Metrics) Notified(kind string, ok bool) {
	result := "sent"
	if !ok {
		result = "failed"
	}
	m.notified.WithLabelValues(kind, result).Inc()
}

// RepositoryChecked records a check of a target's snapshot repository: result is "passed",
// "failed" (problems found) or "error" (it could not run).
func (m *Metrics) RepositoryChecked(target, result string, problems int, at time.Time) {
	for _, r := range []string{"passed", "failed", "error"} {
		m.checks.WithLabelValues(target, r) // every result's series exists from the first check
	}
	m.checks.WithLabelValues(target, result).Inc()
	if result == "passed" {
		m.checkPassed.WithLabelValues(target).Set(float64(at.Unix()))
	}
	if result != "error" {
		m.checkIssues.WithLabelValues(target).Set(float64(problems))
	}
}

// RunFinished counts a run.
func (m *Metrics) RunFinished(j control.JobID, success bool, d time.Duration, stored int64) {
	v := values(j)
	m.duration.WithLabelValues(v...).Observe(d.Seconds())
	if success {
		m.runs.WithLabelValues(append(v, resultSuccess)...).Inc()
		m.bytesWritten.WithLabelValues(v...).Add(float64(stored))
	} else {
		m.runs.WithLabelValues(append(v, resultFailure)...).Inc()
	}
}

// Pruned counts a retention run.
func (m *Metrics) Pruned(target string, deleted int, failed bool) {
	m.pruneRuns.WithLabelValues(target).Inc()
	m.pruned.WithLabelValues(target).Add(float64(deleted))
	if failed {
		m.pruneErrors.WithLabelValues(target).Inc()
	} else {
		m.pruneErrors.WithLabelValues(target).Add(0)
	}
}

// RestoreFinished counts a restore (its result label: success, failure or partial).
func (m *Metrics) RestoreFinished(project, service string, outcome control.Outcome, partial bool) {
	for _, r := range []string{resultSuccess, resultFailure, resultPartial} {
		m.restores.WithLabelValues(project, service, r) // every result's series exists
	}
	result := resultSuccess
	switch {
	case outcome != control.Success && partial:
		result = resultPartial
	case outcome != control.Success:
		result = resultFailure
	}
	m.restores.WithLabelValues(project, service, result).Inc()
}

// VerifyFinished counts a verify (its result label: the outcome).
func (m *Metrics) VerifyFinished(j control.JobID, outcome control.Outcome, _ time.Duration) {
	for _, r := range []control.Outcome{control.Passed, control.Failed, control.Errored, control.Interrupted} {
		m.verifies.WithLabelValues(j.Project, j.Service, string(r)) // every result's series exists
	}
	m.verifies.WithLabelValues(j.Project, j.Service, string(outcome)).Inc()
}

// jobsChanged makes the counter series of new jobs exist at 0 (so that a failure is an
// increase from 0) and deletes the series of jobs that are gone.
func (m *Metrics) jobsChanged(jobs []control.JobStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := map[control.JobID]bool{}
	for _, j := range jobs {
		now[j.JobID] = true
		if m.jobs[j.JobID] {
			continue
		}
		v := values(j.JobID)
		m.runs.WithLabelValues(append(v, resultSuccess)...)
		m.runs.WithLabelValues(append(v, resultFailure)...)
		m.bytesWritten.WithLabelValues(v...)
		m.pruneRuns.WithLabelValues(j.Target)
		m.pruneErrors.WithLabelValues(j.Target)
		m.pruned.WithLabelValues(j.Target)
	}
	for j := range m.jobs {
		if !now[j] {
			v := values(j)
			m.runs.DeleteLabelValues(append(v, resultSuccess)...)
			m.runs.DeleteLabelValues(append(v, resultFailure)...)
			m.bytesWritten.DeleteLabelValues(v...)
			m.duration.DeleteLabelValues(v...)
		}
	}
	m.jobs = now
}

var (
	jobDesc = func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(ns+"_"+name, help, jobLabels, nil)
	}
	descLastSuccess  = jobDesc("last_success_timestamp_seconds", "When the job's last successful backup finished (Unix time).")
	descLastRun      = jobDesc("last_run_timestamp_seconds", "When the job's last run finished, successful or not (Unix time).")
	descLastResult   = jobDesc("last_run_success", "1 if the job's last run succeeded, 0 if it failed.")
	descLastDuration = jobDesc("last_run_duration_seconds", "How long the job's last run took.")
	descLastSize     = jobDesc("last_backup_size_bytes", "Stored size of the job's last successful backup (of an incremental job: what its snapshot added).")
	descIncremental  = jobDesc("job_incremental", "1 when the job's backups are snapshots in the target's repository (docker-backup.incremental).")
	descNextRun      = jobDesc("next_run_timestamp_seconds", "When the job runs next (Unix time).")
	descInterval     = jobDesc("schedule_interval_seconds", "The longest gap between two runs of the job's schedule: a backup older than this is late.")
	descRunning      = jobDesc("job_running", "1 while the job runs.")
	descLastVerify   = jobDesc("last_verify_timestamp_seconds", "When the job's last verify finished, whatever its result (Unix time).")
	descVerifyResult = jobDesc("last_verify_success", "1 if the job's last verify passed; 0 if it failed, could not run or was interrupted.")
	descVerifyTime   = jobDesc("verify_duration_seconds", "How long the job's last verify took (about the time a restore takes).")
	descVerifyPassed = jobDesc("last_verify_success_timestamp_seconds", "When the job's last verify that passed finished (Unix time).")
	descVerifyEvery  = jobDesc("verify_interval_seconds", "The longest gap between two verifies of the job's verify schedule.")
	descUntrusted    = jobDesc("untrusted_backups", "Backups in the job's directory on its target that no trusted key signed, as its last retention run found them: never counted, never deleted (someone else can write to the target).")
	descTargetCount  = prometheus.NewDesc(ns+"_target_backups", "Backups the target holds for the sidecar's scope (from its listing).", []string{"target"}, nil)
	descTargetBytes  = prometheus.NewDesc(ns+"_target_size_bytes", "Bytes of the backups the target holds for the sidecar's scope (from its listing).", []string{"target"}, nil)
	descIncomplete   = prometheus.NewDesc(ns+"_restore_incomplete", "1 when the service's latest restore through the sidecar failed after it began changing the service, which could not be undone: its data is neither the old nor the backup's.", []string{"project", "service"}, nil)
	descConfigured   = prometheus.NewDesc(ns+"_jobs_configured", "Jobs scheduled from the services' labels.", nil, nil)
	descLabelErrors  = prometheus.NewDesc(ns+"_label_errors", "Invalid docker-backup labels (see `docker backup status`); their jobs are not scheduled.", nil, nil)
	descJobsRunning  = prometheus.NewDesc(ns+"_jobs_running", "Jobs running now.", nil, nil)
	descEvents       = prometheus.NewDesc(ns+"_events_connected", "1 while the Docker events stream is connected.", nil, nil)
	descRecovery     = prometheus.NewDesc(ns+"_recovery_pending", "What the sidecar still has to finish after a crash (containers to start, uploads to remove); it retries until done.", nil, nil)
	descCatalogUp    = prometheus.NewDesc(ns+"_catalog_up", "1 if the catalog database answers.", nil, nil)
	descStatusUp     = prometheus.NewDesc(ns+"_status_up", "1 if the sidecar could read its own status for this scrape (the state gauges are missing otherwise).", nil, nil)
)

// stateCollector computes the state-mirroring gauges from one status per scrape.
type stateCollector struct{ m *Metrics }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLastSuccess, descLastRun, descLastResult, descLastDuration, descLastSize, descNextRun,
		descInterval, descRunning, descIncremental, descLastVerify, descVerifyResult, descVerifyTime, descVerifyPassed, descVerifyEvery, descUntrusted, descTargetCount, descTargetBytes, descIncomplete, descConfigured, descLabelErrors, descJobsRunning,
		descEvents, descRecovery, descCatalogUp, descStatusUp} {
		ch <- d
	}
	c.m.runs.Describe(ch)
	c.m.bytesWritten.Describe(ch)
	c.m.duration.Describe(ch)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := 1.0
	if c.m.ready != nil && c.m.ready(ctx) != nil {
		up = 0
	}
	gauge(descCatalogUp, up)
	st, err := c.m.status(ctx)
	if err == nil {
		c.m.jobsChanged(st.Jobs)
	}
	c.m.runs.Collect(ch)
	c.m.bytesWritten.Collect(ch)
	c.m.duration.Collect(ch)
	if err != nil {
		gauge(descStatusUp, 0)
		return
	}
	gauge(descStatusUp, 1)
	running := 0
	for _, j := range st.Jobs {
		v := values(j.JobID)
		if !j.Next.IsZero() {
			gauge(descNextRun, float64(j.Next.Unix()), v...)
		}
		if j.Interval > 0 {
			gauge(descInterval, j.Interval.Seconds(), v...)
		}
		gauge(descRunning, boolFloat(j.Running), v...)
		gauge(descIncremental, boolFloat(j.Incremental), v...)
		if j.Retention != "" {
			gauge(descUntrusted, float64(j.Untrusted), v...)
		}
		if j.Running {
			running++
		}
		if l := j.LastFinished; l != nil && l.Status != control.Running {
			gauge(descLastRun, float64(l.FinishedAt.Unix()), v...)
			gauge(descLastResult, boolFloat(l.Status == control.Success), v...)
			gauge(descLastDuration, l.FinishedAt.Sub(l.StartedAt).Seconds(), v...)
		}
		if s := j.LastSuccess; s != nil {
			gauge(descLastSuccess, float64(s.FinishedAt.Unix()), v...)
			gauge(descLastSize, float64(s.Size), v...)
		}
		if l := j.LastVerify; l != nil && l.Status != control.Running {
			gauge(descLastVerify, float64(l.FinishedAt.Unix()), v...)
			gauge(descVerifyResult, boolFloat(l.Status == control.Passed), v...)
			gauge(descVerifyTime, l.FinishedAt.Sub(l.StartedAt).Seconds(), v...)
		}
		if p := j.LastVerifyPassed; p != nil {
			gauge(descVerifyPassed, float64(p.FinishedAt.Unix()), v...)
		}
		if j.VerifyInterval > 0 {
			gauge(descVerifyEvery, j.VerifyInterval.Seconds(), v...)
		}
	}
	for _, t := range st.Targets {
		if !t.Listed.IsZero() {
			gauge(descTargetCount, float64(t.Backups), t.Name)
			gauge(descTargetBytes, float64(t.Bytes), t.Name)
		}
	}
	latest := map[[2]string]bool{}
	for _, r := range st.Restores { // newest first
		key := [2]string{r.Project, r.Service}
		if latest[key] || r.Status == control.Running {
			continue
		}
		latest[key] = true
		gauge(descIncomplete, boolFloat(r.Partial), r.Project, r.Service)
	}
	gauge(descConfigured, float64(len(st.Jobs)))
	gauge(descLabelErrors, float64(len(st.Problems)))
	gauge(descJobsRunning, float64(running))
	gauge(descEvents, boolFloat(st.EventsConnected))
	gauge(descRecovery, float64(len(st.Recovery)))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
