package control_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"reflect"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var (
	t0 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	t1 = t0.Add(90 * time.Second)
)

var backup = control.Backup{Key: "shop/db/db-nightly-postgres-20261207T020000.000Z-0a1b2c3d.sql.zst", Project: "shop", Service: "db", Job: "nightly",
	Container: "shop-db-1", Strategy: "postgres", CreatedAt: t0, DurationMS: 1500, Size: 1 << 20, RawSize: 4 << 20,
	SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Encrypted: true, KeyID: "ed25519:1a2b3c4d5e6f7081", Untrusted: ""}

// Every message of the protocol, filled: what the sidecar and the plugin send each other.
var messages = map[string]any{
	"status": &control.Status{Version: "v1.2.3", Host: "backup-host", Project: "shop", Started: t0, SigningKey: "ed25519:1a2b3c4d5e6f7081",
		PublicKey: "docker-backup-ed25519 AAAA", Targets: []control.TargetInfo{{Name: "default", URL: "/backups", Backups: 3, Bytes: 3 << 20, Listed: t1}},
		Jobs: []control.JobStatus{{JobID: control.JobID{Project: "shop", Service: "db", Job: "nightly", Strategy: "postgres", Target: "default"},
			Container: "shop-db-1", Schedule: "0 2 * * *", ScheduleText: "daily at 02:00", Interval: 24 * time.Hour, Retention: "keep-daily=7",
			Untrusted: 1, Stop: true, Pre: []string{"sh", "-c", "sync"}, Post: []string{"true"}, Next: t0.Add(24 * time.Hour), Running: false,
			Last:         &control.RunInfo{ID: 7, Status: control.Success, StartedAt: t0, FinishedAt: t1, Size: 1 << 20, Key: backup.Key},
			LastSuccess:  &control.RunInfo{ID: 7, Status: control.Success, StartedAt: t0, FinishedAt: t1, Size: 1 << 20, Key: backup.Key},
			LastFinished: &control.RunInfo{ID: 7, Status: control.Success, StartedAt: t0, FinishedAt: t1, Size: 1 << 20, Key: backup.Key},
			Runs:         map[control.Outcome]int{control.Success: 6, control.Failed: 1},
			Verify:       "weekly", VerifyInterval: 7 * 24 * time.Hour, NextVerify: t0.Add(48 * time.Hour),
			LastVerify:       &control.VerifyInfo{Key: backup.Key, Target: "default", Status: control.Failed, StartedAt: t0, FinishedAt: t1, Checks: 3, Failed: 1, Summary: "table orders: 10 rows, found 9"},
			LastVerifyPassed: &control.VerifyInfo{Key: backup.Key, Target: "default", Status: control.Passed, StartedAt: t0, FinishedAt: t1, Checks: 3}}},
		Problems: []string{`container shop-web-1: label docker-backup.schedule="daily": not a cron expression`}, Unscheduled: []string{"cache"},
		Restores: []control.RestoreInfo{{Project: "shop", Service: "db", Key: backup.Key, Target: "default", Strategy: "postgres", Status: control.Failed,
			Partial: true, StartedAt: t0, FinishedAt: t1, Error: "psql exited with code 3"}},
		Verifies: []control.VerifyInfo{{Project: "shop", Service: "db", Job: "nightly", Key: backup.Key, Target: "default", Status: control.Passed, StartedAt: t0, FinishedAt: t1, Checks: 3}},
		OneOff:   []control.RunInfo{{ID: 9, Project: "shop", Service: "files", Status: control.Interrupted, StartedAt: t0, Error: "the sidecar stopped"}},
		Recovery: []string{"start container shop-db-1"}, EventsConnected: true, LastReconcile: t1},
	"backups": []control.Backups{{Target: "default", URL: "/backups", Backups: []control.Backup{backup,
		{Key: "shop/db/db-postgres-20261206T020000.000Z-5e6f7a8b.sql.zst", Project: "shop", Service: "db", Strategy: "postgres", CreatedAt: t0.Add(-24 * time.Hour),
			Size: 10, RawSize: 20, SHA256: "ab", Untrusted: "the manifest is not signed"}}, Problems: []string{"shop/db/x: manifest has no strategy"}}},
	"run-request":     &control.RunRequest{Project: "shop", Service: "db", Job: "nightly"},
	"restore-request": &control.RestoreRequest{Project: "shop", Service: "db", Key: "latest", Target: "offsite", NoStop: true, AllowUnsigned: true},
	"verify-request":  &control.VerifyRequest{Project: "shop", Service: "db", Key: backup.Key, Target: "offsite", AllowUnsigned: true},
	"event-log":       &control.Event{Time: t0, Level: "warn", Message: "stopping container (container=shop-db-1)"},
	"event-result": &control.Event{Time: t1, Result: &control.Result{Key: backup.Key, Target: "default,offsite", Duration: 1500 * time.Millisecond,
		Backup: &backup, Pruned: []string{"shop/db/old"}, Warnings: []string{"the backup was made from postgres server 15"}}},
	"event-verify": &control.Event{Time: t1, Result: &control.Result{Key: backup.Key, Target: "default", Duration: time.Minute,
		Verify: &control.VerifyReport{Backup: backup.Key, Service: "shop/db", Strategy: "postgres", Image: "postgres:16", ImageID: "sha256:0123456789abcdef",
			Started: t0, Duration: 61.5, Passed: false, Checks: []control.VerifyCheck{{Name: "table public.orders", Expected: "10", Found: "9", Passed: false, Note: "rows"}},
			Notes: []string{"image gone: the service's current one was used"}, Warnings: []string{"unsigned"}}}},
	"event-error": &control.Event{Time: t1, Error: "refusing to restore: it is a backup of shop/web", Code: control.CodeRefused},
}

// Each message goes over the wire and back unchanged, and its JSON is the one in
// testdata: the plugin and sidecars of other versions read it, so a change of it must be
// seen (go test ./internal/control -update rewrites the files).
func TestMessagesRoundTrip(t *testing.T) {
	for name, msg := range messages {
		t.Run(name, func(t *testing.T) {
			b, err := json.MarshalIndent(msg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".json", append(b, '\n'), *update)
			back := reflect.New(reflect.TypeOf(msg).Elem())
			if reflect.TypeOf(msg).Kind() != reflect.Pointer {
				back = reflect.New(reflect.TypeOf(msg))
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatal(err)
			}
			got := back.Interface()
			if reflect.TypeOf(msg).Kind() != reflect.Pointer {
				got = back.Elem().Interface()
			}
			if !reflect.DeepEqual(got, msg) {
				t.Errorf("round trip changed it:\n%+v\n%+v", got, msg)
			}
		})
	}
}

// A failure reaches the plugin as its code and message, whatever it wrapped on the sidecar.
func TestErrorIsItsMessage(t *testing.T) {
	e := &control.Error{Code: control.CodeBusy, Message: "shop/db is being backed up"}
	if e.Error() != "shop/db is being backed up" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestScope(t *testing.T) {
	if s := (&control.Status{Project: "shop"}).Scope(); s != "project shop" {
		t.Errorf("scope %q", s)
	}
	if s := (&control.Status{Project: "shop", AllProjects: true}).Scope(); s != "all projects" {
		t.Errorf("scope %q", s)
	}
}

// The codes are the protocol's: their values are what old plugins and sidecars send.
func TestCodes(t *testing.T) {
	got := []string{control.CodeNotFound, control.CodeBusy, control.CodeCorrupt, control.CodeUntrusted, control.CodeRefused,
		control.CodePartial, control.CodeInvalid, control.CodeFailed}
	want := []string{"not_found", "busy", "corrupt", "untrusted", "refused", "partial", "invalid", "failed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("codes %v, want %v", got, want)
	}
}
