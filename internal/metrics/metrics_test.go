package metrics

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeStatus is a status the test changes between scrapes.
type fakeStatus struct {
	mu sync.Mutex
	st control.Status
}

func (f *fakeStatus) get(context.Context) (*control.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	return &st, nil
}

func TestGaugesFollowTheStatusAndCountersArePushed(t *testing.T) {
	db := control.JobID{Project: "shop", Service: "db", Job: "default", Strategy: "postgres", Target: "default"}
	files := control.JobID{Project: "shop", Service: "files", Job: "weekly", Strategy: "volume", Target: "offsite"}
	start := time.Unix(1_799_990_000, 0)
	fs := &fakeStatus{st: control.Status{
		Jobs: []control.JobStatus{
			{JobID: db, Next: time.Unix(1_800_000_000, 0), Interval: 24 * time.Hour, Running: true,
				// A run under way: the last-run gauges show the one before it.
				Last:         &control.RunInfo{Status: "running", StartedAt: start.Add(2 * time.Hour)},
				LastFinished: &control.RunInfo{Status: "failed", StartedAt: start.Add(time.Hour), FinishedAt: start.Add(time.Hour + time.Second)},
				LastSuccess:  &control.RunInfo{Status: "success", StartedAt: start, FinishedAt: start.Add(90 * time.Second), Size: 4096}},
			{JobID: files},
		},
		Problems: []string{"a", "b"},
		Targets:  []control.TargetInfo{{Name: "default", Backups: 3, Bytes: 12345, Listed: start}},
		Restores: []control.RestoreInfo{{Project: "shop", Service: "files", Status: "failed", Partial: true}},
		Recovery: []string{"start shop-db-1"},
	}}
	m := New(fs.get, func(context.Context) error { return nil })
	// Failure series exist at 0 before any run.
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP docker_backup_runs_total Runs of the job by result (success or failure).
# TYPE docker_backup_runs_total counter
docker_backup_runs_total{backup_job="default",project="shop",result="failure",service="db",strategy="postgres",target="default"} 0
docker_backup_runs_total{backup_job="default",project="shop",result="success",service="db",strategy="postgres",target="default"} 0
docker_backup_runs_total{backup_job="weekly",project="shop",result="failure",service="files",strategy="volume",target="offsite"} 0
docker_backup_runs_total{backup_job="weekly",project="shop",result="success",service="files",strategy="volume",target="offsite"} 0
`), "docker_backup_runs_total"); err != nil {
		t.Error(err)
	}
	m.RunFinished(db, true, 90*time.Second, 4096)
	m.RunFinished(db, false, time.Second, 0)
	m.RestoreFinished("shop", "files", control.Failed, true)
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP docker_backup_last_run_success 1 if the job's last run succeeded, 0 if it failed.
# TYPE docker_backup_last_run_success gauge
docker_backup_last_run_success{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 0
# HELP docker_backup_last_success_timestamp_seconds When the job's last successful backup finished (Unix time).
# TYPE docker_backup_last_success_timestamp_seconds gauge
docker_backup_last_success_timestamp_seconds{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 1.79999009e+09
# HELP docker_backup_last_backup_size_bytes Stored size of the job's last successful backup (of an incremental job: what its snapshot added).
# TYPE docker_backup_last_backup_size_bytes gauge
docker_backup_last_backup_size_bytes{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 4096
# HELP docker_backup_schedule_interval_seconds The longest gap between two runs of the job's schedule: a backup older than this is late.
# TYPE docker_backup_schedule_interval_seconds gauge
docker_backup_schedule_interval_seconds{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 86400
# HELP docker_backup_written_bytes_total Bytes stored on targets by the job's successful runs.
# TYPE docker_backup_written_bytes_total counter
docker_backup_written_bytes_total{backup_job="default",project="shop",service="db",strategy="postgres",target="default"} 4096
docker_backup_written_bytes_total{backup_job="weekly",project="shop",service="files",strategy="volume",target="offsite"} 0
# HELP docker_backup_jobs_running Jobs running now.
# TYPE docker_backup_jobs_running gauge
docker_backup_jobs_running 1
# HELP docker_backup_label_errors Invalid docker-backup labels (see `+"`docker backup status`"+`); their jobs are not scheduled.
# TYPE docker_backup_label_errors gauge
docker_backup_label_errors 2
# HELP docker_backup_target_size_bytes Bytes of the backups the target holds for the sidecar's scope (from its listing).
# TYPE docker_backup_target_size_bytes gauge
docker_backup_target_size_bytes{target="default"} 12345
# HELP docker_backup_restore_incomplete 1 when the service's latest restore through the sidecar failed after it began changing the service, which could not be undone: its data is neither the old nor the backup's.
# TYPE docker_backup_restore_incomplete gauge
docker_backup_restore_incomplete{project="shop",service="files"} 1
# HELP docker_backup_recovery_pending What the sidecar still has to finish after a crash (containers to start, uploads to remove); it retries until done.
# TYPE docker_backup_recovery_pending gauge
docker_backup_recovery_pending 1
`), "docker_backup_last_run_success", "docker_backup_last_success_timestamp_seconds", "docker_backup_last_backup_size_bytes",
		"docker_backup_schedule_interval_seconds", "docker_backup_written_bytes_total", "docker_backup_jobs_running", "docker_backup_label_errors",
		"docker_backup_target_size_bytes", "docker_backup_restore_incomplete", "docker_backup_recovery_pending"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.restores.WithLabelValues("shop", "files", "partial")); got != 1 {
		t.Errorf("partial restores %v", got)
	}

	// A removed job's series are gone at the next scrape; the other job's stay.
	fs.mu.Lock()
	fs.st.Jobs = fs.st.Jobs[1:]
	fs.mu.Unlock()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == "db" && f.GetName() != "docker_backup_restores_total" {
					t.Errorf("%s still has a series of the removed job", f.GetName())
				}
			}
		}
	}
	if lint, err := testutil.GatherAndLint(m.reg); err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %+v", err, lint)
	}
}
