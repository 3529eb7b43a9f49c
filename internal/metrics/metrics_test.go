package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/sidecar"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRunsAndRemoval(t *testing.T) {
	m := New(func(context.Context) error { return nil })
	db := sidecar.JobInfo{Project: "shop", Service: "db", Job: "default", Strategy: "postgres", Target: "default"}
	files := sidecar.JobInfo{Project: "shop", Service: "files", Job: "weekly", Strategy: "volume", Target: "offsite"}
	m.Configured([]sidecar.JobInfo{db, files}, 2)
	m.JobScheduled(db, time.Unix(1_800_000_000, 0), "0 2 * * *")

	// Failure series exist at 0 before any run.
	if got := testutil.ToFloat64(m.runs.WithLabelValues("shop", "db", "default", "postgres", "default", "failure")); got != 0 {
		t.Errorf("failures before any run = %v", got)
	}
	start := time.Unix(1_799_990_000, 0)
	m.RunStarted(db)
	if testutil.ToFloat64(m.jobsRunning) != 1 {
		t.Error("jobs_running not 1 during a run")
	}
	m.RunFinished(db, sidecar.RunOutcome{Success: true, Started: start, Duration: 90 * time.Second, Size: 4096})
	m.RunStarted(db)
	m.RunFinished(db, sidecar.RunOutcome{Success: false, Started: start.Add(time.Hour), Duration: time.Second})
	v := []string{"shop", "db", "default", "postgres", "default"}
	checks := map[string]float64{
		"success":      testutil.ToFloat64(m.runs.WithLabelValues(append(v, "success")...)),
		"failure":      testutil.ToFloat64(m.runs.WithLabelValues(append(v, "failure")...)),
		"last result":  testutil.ToFloat64(m.lastResult.WithLabelValues(v...)),
		"last success": testutil.ToFloat64(m.lastSuccess.WithLabelValues(v...)),
		"size":         testutil.ToFloat64(m.lastSize.WithLabelValues(v...)),
		"written":      testutil.ToFloat64(m.bytesWritten.WithLabelValues(v...)),
		"interval":     testutil.ToFloat64(m.interval.WithLabelValues(v...)),
		"running":      testutil.ToFloat64(m.jobsRunning),
		"label errors": testutil.ToFloat64(m.labelErrors),
	}
	want := map[string]float64{"success": 1, "failure": 1, "last result": 0, "last success": float64(start.Add(90 * time.Second).Unix()),
		"size": 4096, "written": 4096, "interval": 86400, "running": 0, "label errors": 2}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %v, want %v", k, checks[k], w)
		}
	}

	// A removed job's series are gone; the other job's stay.
	m.JobRemoved(db)
	n, err := testutil.GatherAndCount(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing gathered")
	}
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == "db" {
					t.Errorf("%s still has a series of the removed job", f.GetName())
				}
			}
		}
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP docker_backup_jobs_configured Jobs scheduled from the services' labels.
# TYPE docker_backup_jobs_configured gauge
docker_backup_jobs_configured 2
`), "docker_backup_jobs_configured"); err != nil {
		t.Error(err)
	}
	if lint, err := testutil.GatherAndLint(m.reg); err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %+v", err, lint)
	}
}
