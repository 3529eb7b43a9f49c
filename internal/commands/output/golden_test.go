package output

import (
	"bytes"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/golden"
	"github.com/docker-backup/docker-backup/internal/verify"
)

// What the plugin prints is compared with the files under testdata: a change of output is a
// reviewed diff. `go test ./internal/commands/output -update` rewrites them.
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// now is when these tests print: ages are told against it, times in its zone.
var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

const (
	dbKey    = "shop/db/db-nightly-postgres-20261207T020000.000Z-0a1b2c3d.sql.zst"
	filesKey = "shop/files/files-volume-20261206T030000.000Z-5e6f7a8b.tar.zst"
	sha      = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func run(at time.Time, status control.Outcome, size int64, key, err string) *control.RunInfo {
	r := &control.RunInfo{ID: 1, Status: status, StartedAt: at, Size: size, Key: key, Error: err}
	if status != control.Running {
		r.FinishedAt = at.Add(90 * time.Second)
	}
	return r
}

// oneOff is r as a one-off run of shop's service.
func oneOff(service string, r *control.RunInfo) control.RunInfo {
	r.Project, r.Service = "shop", service
	return *r
}

func TestStatusGolden(t *testing.T) {
	db := control.JobID{Project: "shop", Service: "db", Job: "nightly", Strategy: "postgres", Target: "default"}
	ok := run(now.Add(-10*time.Hour), control.Success, 5<<20, dbKey, "")
	full := &control.Status{Version: "v1.4.0", Host: "backup-host", Project: "shop", Started: now.Add(-72 * time.Hour), SigningKey: "ed25519:1a2b3c4d5e6f7081",
		Targets: []control.TargetInfo{{Name: "default", URL: "/backups", Backups: 12, Bytes: 300 << 20, Listed: now.Add(-time.Minute)},
			{Name: "offsite", URL: "s3://bucket/site-a?endpoint=minio:9000"}},
		Jobs: []control.JobStatus{
			{JobID: db, Container: "shop-db-1", Schedule: "0 2 * * *", ScheduleText: "daily at 02:00", Interval: 24 * time.Hour, Retention: "keep-daily=7",
				Next: now.Add(14 * time.Hour), Last: ok, LastSuccess: ok, Verify: "@weekly",
				LastVerify: &control.VerifyInfo{Key: dbKey, Status: control.Passed, StartedAt: now.Add(-30 * time.Hour), FinishedAt: now.Add(-29 * time.Hour), Checks: 12}},
			{JobID: control.JobID{Project: "shop", Service: "files", Job: "default", Target: "offsite"}, Container: "shop-files-1", Schedule: "@hourly",
				Next: now.Add(20 * time.Minute), Untrusted: 2, Verify: "@daily",
				Last:        run(now.Add(-40*time.Minute), control.Failed, 0, "", "volume: copying /data out of shop/files (container shop-files-1): no space left on device\nand more"),
				LastSuccess: run(now.Add(-3*time.Hour), control.Success, 1536, filesKey, ""),
				LastVerify: &control.VerifyInfo{Key: filesKey, Status: control.Failed, StartedAt: now.Add(-5 * time.Hour), FinishedAt: now.Add(-5*time.Hour + time.Minute),
					Checks: 3, Failed: 1, Summary: "files: expected 120, found 119"}},
			{JobID: control.JobID{Project: "shop", Service: "cache", Job: "default", Strategy: "redis", Target: "default"}, Schedule: "*/15 * * * *",
				ScheduleText: "every 15 minutes", Running: true, Last: run(now.Add(-time.Minute), control.Running, 0, "", ""), Verify: "@daily"},
			{JobID: control.JobID{Project: "shop", Service: "search", Job: "weekly", Strategy: "volume", Target: "default"}, Schedule: "@weekly", ScheduleText: "weekly"},
		},
		Problems:    []string{`container shop-web-1: label docker-backup.schedule="daily": not a cron expression`},
		Unscheduled: []string{"queue", "uploads"},
		Restores: []control.RestoreInfo{
			{Project: "shop", Service: "db", Key: dbKey, Target: "default", Strategy: "postgres", Status: control.Success, StartedAt: now.Add(-2 * time.Hour)},
			{Project: "shop", Service: "files", Key: filesKey, Target: "offsite", Strategy: "volume", Status: control.Failed, Partial: true,
				StartedAt: now.Add(-26 * time.Hour), Error: "tar: short write"},
		},
		Verifies: []control.VerifyInfo{
			{Project: "shop", Service: "db", Key: dbKey, Status: control.Passed, StartedAt: now.Add(-30 * time.Hour), Checks: 12},
			{Project: "shop", Service: "files", Key: filesKey, Status: control.Errored, StartedAt: now.Add(-5 * time.Hour), Summary: "the scratch copy did not start"},
		},
		OneOff: []control.RunInfo{
			oneOff("uploads", run(now.Add(-4*time.Hour), control.Success, 2048, "shop/uploads/uploads-volume-20261207T080000.000Z-99aa88bb.tar.zst", "")),
			oneOff("queue", run(now.Add(-6*time.Hour), control.Interrupted, 0, "", "the sidecar stopped")),
		},
		Recovery:        []string{"start container shop-db-1 (stopped by an interrupted run)"},
		EventsConnected: true, LastReconcile: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name string
		st   *control.Status
	}{
		{"full", full},
		{"no jobs", &control.Status{Version: "v1.4.0", Host: "backup-host", Project: "shop", SigningKey: "ed25519:1a2b3c4d5e6f7081",
			Targets: []control.TargetInfo{{Name: "default", URL: "/backups"}}}},
		{"all projects", &control.Status{Version: "v1.4.0", Host: "backup-host", AllProjects: true, SigningKey: "ed25519:1a2b3c4d5e6f7081", EventsConnected: true,
			Jobs: []control.JobStatus{{JobID: db, Schedule: "@daily", ScheduleText: "daily at 00:00", Next: now.Add(12 * time.Hour)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Status(&b, "shop-backup-1", tc.st, now); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "status-"+strings.ReplaceAll(tc.name, " ", "-")+".golden", b.Bytes(), *update)
		})
	}
}

func TestBackupGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    BackedUp
	}{
		{"direct", BackedUp{Service: "shop/files (container shop-files-1)", Strategy: "volume", Duration: 3210 * time.Millisecond, Key: filesKey,
			Targets: []Stored{{Target: "/backups"}, {Target: "s3://bucket/site-a", Failed: "403 Forbidden"}}, Size: 700 << 20, RawSize: 1171 << 20,
			Via: "read in place on this host", Excluded: []string{"*.log", "cache/"}, SHA256: sha, KeyID: "ed25519:1a2b3c4d5e6f7081", Recipients: []string{"age1qyqszqgpqyqszqgp", "ssh-ed25519 AAAAC3"}}},
		{"sidecar", BackedUp{Service: "shop/db", Strategy: "postgres", Duration: 4620 * time.Millisecond, Sidecar: "shop-backup-1", Key: dbKey,
			Targets: []Stored{{Target: "default"}, {Target: "offsite"}}, Size: 5 << 20, RawSize: 48 << 20, SHA256: sha, KeyID: "ed25519:1a2b3c4d5e6f7081",
			Pruned: []string{"shop/db/db-nightly-postgres-20261130T020000.000Z-01020304.sql.zst"}}},
		{"empty", BackedUp{Service: "container solo", Strategy: "sqlite", Key: "standalone/solo/solo-sqlite-20261207T020000.000Z-00000000.db.gz", SHA256: sha}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			Backup(&b, tc.b)
			golden.Check(t, "run-"+tc.name+".golden", b.Bytes(), *update)
		})
	}
}

func TestRestoreGolden(t *testing.T) {
	var b bytes.Buffer
	Restore(&b, Restored{Key: dbKey, Into: "shop/db (container shop-db-1)", SHA256: sha, KeyID: "ed25519:1a2b3c4d5e6f7081"})
	Restore(&b, Restored{Key: filesKey, Into: "shop/files", SHA256: sha, Sidecar: "shop-backup-1"})
	golden.Check(t, "restore.golden", b.Bytes(), *update)
}

// rows are a listing's backups, newest first, of every kind the NOTE column tells apart.
func rows() []Listed {
	s := func(key, project, service, job, strategy string, age time.Duration, size int64) artifact.Summary {
		return artifact.Summary{Key: key, Project: project, Service: service, Job: job, Container: project + "-" + service + "-1", Strategy: strategy,
			CreatedAt: now.Add(-age), DurationMS: 1500, Size: size, RawSize: 4 * size, SHA256: sha, KeyID: "ed25519:1a2b3c4d5e6f7081"}
	}
	future := s("shop/db/db-postgres-20261209T020000.000Z-ffffffff.sql.zst", "shop", "db", "", "postgres", -38*time.Hour, 1<<20)
	unsigned := s("shop/db/db-postgres-20261207T010000.000Z-11111111.sql.zst", "shop", "db", "", "postgres", 11*time.Hour, 900<<10)
	unsigned.KeyID, unsigned.Untrusted = "", "the manifest is not signed"
	other := s("shop/files/files-volume-20261205T030000.000Z-22222222.tar.zst", "shop", "files", "", "volume", 57*time.Hour, 3<<30)
	other.KeyID, other.Untrusted = "ed25519:9999999999999999", "the manifest is signed with another key (key ed25519:9999999999999999)"
	bad := s("shop/files/files-volume-20261204T030000.000Z-33333333.tar.zst", "shop", "files", "", "volume", 81*time.Hour, 3<<30)
	bad.Untrusted = "the manifest's signature does not match: changed after it was signed"
	encrypted := s(filesKey, "shop", "files", "default", "volume", 33*time.Hour, 700<<20)
	encrypted.Encrypted = true
	forged := s("shop/db/db-postgres-20261203T000000.000Z-44444444.sql.zst", "shop", "db", "", "postgres", 100*time.Hour, 1)
	forged.Job, forged.Untrusted, forged.KeyID = "x\x1b[2Jy", "the manifest is not signed", ""
	solo := s("standalone/solo/solo-sqlite-20261207T020000.000Z-00000000.db.gz", "", "", "", "sqlite", 10*time.Hour, 4096)
	solo.Container = "solo"
	return []Listed{{Summary: future, Target: "default"}, {Summary: s(dbKey, "shop", "db", "nightly", "postgres", 10*time.Hour, 5<<20), Target: "default"},
		{Summary: unsigned, Target: "default"}, {Summary: solo, Target: "default"}, {Summary: encrypted, Target: "offsite"}, {Summary: other, Target: "offsite"},
		{Summary: bad, Target: "offsite"}, {Summary: forged, Target: "default"}}
}

func TestBackupsGolden(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rows        []Listed
		withTargets bool
		format      string
	}{
		{"ls-table", rows(), false, "table"},
		{"ls-sidecar", rows(), true, "table"},
		{"ls-json", rows()[:3], false, "json"},
		{"ls-empty-json", nil, false, "json"},
		{"ls-empty", nil, false, "table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Backups(&b, tc.rows, tc.withTargets, tc.format, now); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.name+".golden", b.Bytes(), *update)
		})
	}
}

func TestVerifyReportGolden(t *testing.T) {
	passed := &verify.Report{Backup: dbKey, Service: "shop/db", Strategy: "postgres", Image: "postgres:16", ImageID: "sha256:0123456789abcdef0123",
		Started: now, Duration: 61.54, Passed: true, Notes: []string{"the backed-up image is gone: the service's current image was used"},
		Checks: []verify.Check{{Name: "table public.orders", Expected: "1000", Found: "1000", Passed: true}, {Name: "table public.users", Expected: "10", Found: "10", Passed: true}}}
	failed := &verify.Report{Backup: filesKey, Service: "shop/files", Strategy: "volume", Image: "example/files", ImageID: "sha256:abcdef",
		Started: now, Duration: 3.21, Warnings: []string{"restored without set-user-ID files: the backup is unsigned", "a \x1b[31mforged\x1b[0m warning"}}
	for i := range 33 {
		failed.Checks = append(failed.Checks, verify.Check{Name: fmt.Sprintf("dir %02d", i), Expected: "1", Found: "1", Passed: true})
	}
	failed.Checks = append(failed.Checks, verify.Check{Name: "files", Expected: "120", Found: "119", Note: "one missing"},
		verify.Check{Name: "digest", Expected: strings.Repeat("a", 150) + "\n" + strings.Repeat("b", 100), Found: "c"})
	for _, tc := range []struct {
		name   string
		r      *verify.Report
		format string
	}{
		{"verify-passed", passed, "table"},
		{"verify-failed", failed, "table"},
		{"verify-passed-json", passed, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, warn bytes.Buffer
			if err := VerifyReport(&out, &warn, tc.r, tc.format); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.name+".golden", append(out.Bytes(), append([]byte("--- warnings:\n"), warn.Bytes()...)...), *update)
		})
	}
}
