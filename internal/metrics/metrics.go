// Package metrics exports what the sidecar does as Prometheus metrics, on a registry of its
// own. Labels are bounded: project, service, job, strategy and target for jobs, target for
// targets; never IDs, keys, error text or times. The series of a removed job are deleted.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/schedule"
	"github.com/docker-backup/docker-backup/internal/sidecar"
	"github.com/docker-backup/docker-backup/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ns = "docker_backup"

// jobLabels name a job's series. "backup_job", not "job": Prometheus sets "job" to the scrape job.
var jobLabels = []string{"project", "service", "backup_job", "strategy", "target"}

// Metrics implements sidecar.Observer.
type Metrics struct {
	reg *prometheus.Registry

	lastSuccess, lastRun, lastResult, lastDuration, lastSize *prometheus.GaugeVec
	nextRun, interval, running                               *prometheus.GaugeVec
	runs                                                     *prometheus.CounterVec
	bytesWritten                                             *prometheus.CounterVec
	duration                                                 *prometheus.HistogramVec

	retainedBackups, retainedBytes *prometheus.GaugeVec
	pruneRuns, pruneErrors, pruned *prometheus.CounterVec

	jobsConfigured, labelErrors, jobsRunning, eventsConnected prometheus.Gauge

	mu   sync.Mutex
	jobs map[sidecar.JobInfo]bool
}

// New registers the metrics. ready reports the catalog's health for docker_backup_catalog_up.
func New(ready func(context.Context) error) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), jobs: map[sidecar.JobInfo]bool{}}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, jobLabels)
	}
	m.lastSuccess = gauge("last_success_timestamp_seconds", "When the job's last successful backup finished (Unix time).")
	m.lastRun = gauge("last_run_timestamp_seconds", "When the job's last run finished, successful or not (Unix time).")
	m.lastResult = gauge("last_run_success", "1 if the job's last run succeeded, 0 if it failed.")
	m.lastDuration = gauge("last_run_duration_seconds", "How long the job's last run took.")
	m.lastSize = gauge("last_backup_size_bytes", "Stored size of the job's last successful backup.")
	m.nextRun = gauge("next_run_timestamp_seconds", "When the job runs next (Unix time).")
	m.interval = gauge("schedule_interval_seconds", "The longest gap between two runs of the job's schedule: a backup older than this is late.")
	m.running = gauge("job_running", "1 while the job runs.")
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runs_total", Help: "Runs of the job by result (success or failure)."},
		append(jobLabels[:len(jobLabels):len(jobLabels)], "result"))
	m.bytesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "written_bytes_total", Help: "Bytes stored on targets by the job's successful runs."}, jobLabels)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "run_duration_seconds", Help: "Duration of the job's runs.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800}}, jobLabels)
	tgauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, []string{"target"})
	}
	tcounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, []string{"target"})
	}
	m.retainedBackups = tgauge("target_backups", "Backups the target holds for the sidecar's scope (from its listing).")
	m.retainedBytes = tgauge("target_size_bytes", "Bytes of the backups the target holds for the sidecar's scope (from its listing).")
	m.pruneRuns = tcounter("prune_runs_total", "Retention runs on the target.")
	m.pruneErrors = tcounter("prune_errors_total", "Retention runs on the target that failed to list or delete.")
	m.pruned = tcounter("pruned_backups_total", "Backups deleted by retention.")
	one := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help})
	}
	m.jobsConfigured = one("jobs_configured", "Jobs scheduled from the services' labels.")
	m.labelErrors = one("label_errors", "Invalid docker-backup labels (see `docker backup status`); their jobs are not scheduled.")
	m.jobsRunning = one("jobs_running", "Jobs running now.")
	m.eventsConnected = one("events_connected", "1 while the Docker events stream is connected.")
	catalogUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "catalog_up", Help: "1 if the catalog database answers."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if ready != nil && ready(ctx) != nil {
			return 0
		}
		return 1
	})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info", Help: "The sidecar's version; always 1."}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version.Version, runtime.Version()).Set(1)

	m.reg.MustRegister(m.lastSuccess, m.lastRun, m.lastResult, m.lastDuration, m.lastSize, m.nextRun, m.interval, m.running,
		m.runs, m.bytesWritten, m.duration, m.retainedBackups, m.retainedBytes, m.pruneRuns, m.pruneErrors, m.pruned,
		m.jobsConfigured, m.labelErrors, m.jobsRunning, m.eventsConnected, catalogUp, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func values(j sidecar.JobInfo) []string {
	return []string{j.Project, j.Service, j.Job, j.Strategy, j.Target}
}

// Configured records the scheduled jobs and pre-creates their series.
func (m *Metrics) Configured(jobs []sidecar.JobInfo, problems int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, j := range jobs {
		if !m.jobs[j] {
			m.jobs[j] = true
			v := values(j)
			m.runs.WithLabelValues(append(v, "success")...)
			m.runs.WithLabelValues(append(v, "failure")...)
			m.bytesWritten.WithLabelValues(v...)
			m.running.WithLabelValues(v...).Set(0)
			m.pruneRuns.WithLabelValues(j.Target)
			m.pruneErrors.WithLabelValues(j.Target)
			m.pruned.WithLabelValues(j.Target)
		}
	}
	m.jobsConfigured.Set(float64(len(jobs)))
	m.labelErrors.Set(float64(problems))
}

// JobScheduled records the next run and the schedule's interval.
func (m *Metrics) JobScheduled(j sidecar.JobInfo, next time.Time, spec string) {
	v := values(j)
	if !next.IsZero() {
		m.nextRun.WithLabelValues(v...).Set(float64(next.Unix()))
	}
	if s, err := schedule.Parse(spec); err == nil {
		m.interval.WithLabelValues(v...).Set(s.Interval(time.Now()).Seconds())
	}
}

// JobRemoved deletes the job's series.
func (m *Metrics) JobRemoved(j sidecar.JobInfo) {
	m.mu.Lock()
	delete(m.jobs, j)
	m.mu.Unlock()
	v := values(j)
	for _, g := range []*prometheus.GaugeVec{m.lastSuccess, m.lastRun, m.lastResult, m.lastDuration, m.lastSize, m.nextRun, m.interval, m.running} {
		g.DeleteLabelValues(v...)
	}
	m.runs.DeleteLabelValues(append(v, "success")...)
	m.runs.DeleteLabelValues(append(v, "failure")...)
	m.bytesWritten.DeleteLabelValues(v...)
	m.duration.DeleteLabelValues(v...)
}

// History restores the last results from the catalog after a restart.
func (m *Metrics) History(j sidecar.JobInfo, last, lastSuccess *sidecar.RunOutcome) {
	v := values(j)
	if last != nil {
		m.lastRun.WithLabelValues(v...).Set(float64(last.Started.Add(last.Duration).Unix()))
		m.lastResult.WithLabelValues(v...).Set(boolFloat(last.Success))
		m.lastDuration.WithLabelValues(v...).Set(last.Duration.Seconds())
	}
	if lastSuccess != nil {
		m.lastSuccess.WithLabelValues(v...).Set(float64(lastSuccess.Started.Add(lastSuccess.Duration).Unix()))
		m.lastSize.WithLabelValues(v...).Set(float64(lastSuccess.Size))
	}
}

// RunStarted marks the job running.
func (m *Metrics) RunStarted(j sidecar.JobInfo) {
	m.running.WithLabelValues(values(j)...).Set(1)
	m.jobsRunning.Inc()
}

// RunFinished records a run's result.
func (m *Metrics) RunFinished(j sidecar.JobInfo, o sidecar.RunOutcome) {
	v := values(j)
	m.running.WithLabelValues(v...).Set(0)
	m.jobsRunning.Dec()
	end := float64(o.Started.Add(o.Duration).Unix())
	m.lastRun.WithLabelValues(v...).Set(end)
	m.lastResult.WithLabelValues(v...).Set(boolFloat(o.Success))
	m.lastDuration.WithLabelValues(v...).Set(o.Duration.Seconds())
	m.duration.WithLabelValues(v...).Observe(o.Duration.Seconds())
	if o.Success {
		m.runs.WithLabelValues(append(v, "success")...).Inc()
		m.lastSuccess.WithLabelValues(v...).Set(end)
		m.lastSize.WithLabelValues(v...).Set(float64(o.Size))
		m.bytesWritten.WithLabelValues(v...).Add(float64(o.Size))
	} else {
		m.runs.WithLabelValues(append(v, "failure")...).Inc()
	}
}

// Pruned records a retention run.
func (m *Metrics) Pruned(target string, deleted int, failed bool) {
	m.pruneRuns.WithLabelValues(target).Inc()
	m.pruned.WithLabelValues(target).Add(float64(deleted))
	if failed {
		m.pruneErrors.WithLabelValues(target).Inc()
	} else {
		m.pruneErrors.WithLabelValues(target).Add(0)
	}
}

// TargetUsage records what a target holds.
func (m *Metrics) TargetUsage(target string, backups int, bytes int64) {
	m.retainedBackups.WithLabelValues(target).Set(float64(backups))
	m.retainedBytes.WithLabelValues(target).Set(float64(bytes))
}

// EventsConnected records the events stream's state.
func (m *Metrics) EventsConnected(up bool) { m.eventsConnected.Set(boolFloat(up)) }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ sidecar.Observer = (*Metrics)(nil)
