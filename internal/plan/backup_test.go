package plan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/target"
)

// A service that labels.Excluded names (the sidecar, docker-backup.enable=false or a value
// that is not a boolean) is never backed up with a detected strategy, only when one is named.
func TestNewBackupRefusesExcludedServices(t *testing.T) {
	tgt := newShelf(t).tgt
	for _, tc := range []struct {
		name     string
		opts     []enginetest.Option
		strategy string
		says     string // "" backed up
	}{
		{"enabled", []enginetest.Option{enginetest.WithLabel(labels.Enable, "true")}, "", ""},
		{"not labelled", nil, "", ""},
		{"disabled", []enginetest.Option{enginetest.WithLabel(labels.Enable, "false")}, "", "is not backed up (label docker-backup.enable=false)"},
		{"neither true nor false", []enginetest.Option{enginetest.WithLabel(labels.Enable, "maybe")}, "", `is not backed up (label docker-backup.enable="maybe" is neither true nor false)`},
		{"the sidecar", []enginetest.Option{enginetest.Sidecar()}, "", "is not backed up (the docker-backup sidecar itself)"},
		{"disabled, strategy named", []enginetest.Option{enginetest.WithLabel(labels.Enable, "false")}, "volume", ""},
		{"nothing to back up", []enginetest.Option{enginetest.WithImage("example/app")}, "", "cannot tell how to back up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if tc.name != "nothing to back up" {
				opts = append(opts, enginetest.WithVolume("data", "/data"))
			}
			e := enginetest.New(enginetest.Service("shop", "db", append(opts, enginetest.Stopped())...))
			b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, "shop-db-1"), Strategy: tc.strategy, Target: tgt})
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.says == "" && b.Strategy.Name() != "volume":
				t.Errorf("strategy %s", b.Strategy.Name())
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("error %v, want one saying %q", err, tc.says)
			}
		})
	}
}

// A backup's key files it under its project and service (a container outside compose under
// "standalone" and its name), with its job, strategy, time and compression.
func TestNewBackupNamesTheArtifact(t *testing.T) {
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		c    *enginetest.ContainerSpec
		job  string
		comp artifact.Compression
		want string
	}{
		{"by hand", enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")), "", "", "shop/db/db-volume-20261207T020000.000Z-"},
		{"a job", enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")), "nightly", artifact.Gzip, "shop/db/db-nightly-volume-20261207T020000.000Z-"},
		{"outside compose", enginetest.Container("mydb", enginetest.WithVolume("d", "/data")), "", "", "standalone/mydb/mydb-volume-20261207T020000.000Z-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := enginetest.New(tc.c)
			b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, tc.c.Name), Strategy: "volume", Job: tc.job, Compression: tc.comp, At: at})
			if err != nil {
				t.Fatal(err)
			}
			ext := ".tar.zst"
			if tc.comp == artifact.Gzip {
				ext = ".tar.gz"
			}
			if !strings.HasPrefix(b.Key, tc.want) || !strings.HasSuffix(b.Key, ext) {
				t.Errorf("key %s, want %s…%s", b.Key, tc.want, ext)
			}
		})
	}
}

// The post command is the clean-up of the pre command: it runs whatever happened — a stored
// backup, a failed one, a failed pre command — after the service was started again. A failed
// pre command backs nothing up.
func TestPostHookAlwaysRuns(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stop       bool
		failBackup bool
		fail       []string // hooks that fail
		want       string   // what happened, in order
		stored     bool
		says       string // what the error says ("" none)
	}{
		{name: "stored", want: "exec pre backup exec post", stored: true},
		{name: "stored, stopped", stop: true, want: "exec pre stop shop-db-1 backup start shop-db-1 exec post", stored: true},
		{name: "the backup failed", failBackup: true, want: "exec pre backup exec post", says: "dump tool crashed"},
		{name: "the backup failed, stopped", stop: true, failBackup: true, want: "exec pre stop shop-db-1 backup start shop-db-1 exec post", says: "dump tool crashed"},
		{name: "the pre command failed", fail: []string{"pre"}, want: "exec pre exec post", says: "pre command failed, nothing was backed up"},
		{name: "the post command failed", fail: []string{"post"}, want: "exec pre backup exec post", stored: true, says: "post command failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev events
			e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")))
			watch(e, &ev, tc.fail...)
			b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, "shop-db-1"), Strategy: "volume", Target: newShelf(t).tgt,
				Stop: tc.stop, Pre: []string{"pre"}, Post: []string{"post"}})
			if err != nil {
				t.Fatal(err)
			}
			b.Strategy = &fakeStrategy{ev: &ev, fail: tc.failBackup}
			res, err := b.Run(context.Background())
			if got := ev.String(); got != tc.want {
				t.Errorf("happened: %s\nwant:     %s", got, tc.want)
			}
			if (res != nil) != tc.stored {
				t.Errorf("result %v, want stored %v", res, tc.stored)
			}
			if tc.says == "" && err != nil || tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("error %v, want one saying %q", err, tc.says)
			}
			if c, _ := e.Get("shop-db-1"); !c.Running {
				t.Error("the service is left stopped")
			}
		})
	}
}

// A hook that hangs is ended at the hook timeout; the post command still runs.
func TestHookTimeout(t *testing.T) {
	var ev events
	e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")))
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	e.OnExec = func(x enginetest.Exec) enginetest.ExecResult {
		ev.add("exec " + x.Cmd[0])
		if x.Cmd[0] == "pre" {
			<-hung
		}
		return enginetest.ExecResult{Stdout: "0\n"} // the end script: nothing left to end
	}
	b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, "shop-db-1"), Strategy: "volume", Target: newShelf(t).tgt,
		Pre: []string{"pre"}, Post: []string{"post"}, HookTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.Strategy = &fakeStrategy{ev: &ev}
	res, err := b.Run(context.Background())
	if res != nil || err == nil || !strings.Contains(err.Error(), "pre did not finish within 50ms (the hook timeout)") {
		t.Errorf("result %v, error %v", res, err)
	}
	if got := ev.String(); got != "exec pre exec sh exec post" {
		t.Errorf("happened: %s", got)
	}
}

// With the service stopped, the containers that depend on it (compose depends_on, directly
// or not) stop first, the furthest first, and start again after it, in the reverse order.
func TestBackupStopsTheDependentsFirst(t *testing.T) {
	var ev events
	e := enginetest.New(
		enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")),
		enginetest.Service("shop", "api", enginetest.DependsOn("db")),
		enginetest.Service("shop", "web", enginetest.DependsOn("api")),
		enginetest.Service("shop", "cache"),
		enginetest.Service("shop", "worker", enginetest.DependsOn("db"), enginetest.Stopped()),
	)
	watch(e, &ev)
	b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, "shop-db-1"), Strategy: "volume", Target: newShelf(t).tgt, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Strategy = &fakeStrategy{ev: &ev}
	if _, err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "stop shop-web-1 stop shop-api-1 stop shop-db-1 backup start shop-db-1 start shop-api-1 start shop-web-1"
	if got := ev.String(); got != want {
		t.Errorf("happened: %s\nwant:     %s", got, want)
	}
}

// What interrupted backups left (an artifact without its manifest, older than
// listing.StaleAfter) is swept after a backup from the service's directory of every target
// the backup was stored on — not from a target that failed, nor after a backup that failed.
func TestSweepOnlyWhereTheBackupWasStored(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failBackup bool
		swept      map[string]bool // by target
	}{
		{name: "stored on one of two", swept: map[string]bool{"good": true, "full": false}},
		{name: "the backup failed", failBackup: true, swept: map[string]bool{"good": false, "full": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, full := newShelf(t), newShelf(t)
			left := map[string]string{"good": leftover(t, good), "full": leftover(t, full)}
			var ev events
			e := enginetest.New(enginetest.Service("shop", "db", enginetest.WithVolume("d", "/data")))
			b, err := NewBackup(context.Background(), e, BackupSpec{Container: inspect(t, e, "shop-db-1"), Strategy: "volume",
				Targets: []pipeline.Destination{{Name: "good", Target: good.tgt}, {Name: "full", Target: refusing{full.tgt}}}})
			if err != nil {
				t.Fatal(err)
			}
			b.Strategy = &fakeStrategy{ev: &ev, fail: tc.failBackup}
			res, err := b.Run(context.Background())
			var partial *pipeline.TargetsError
			if !tc.failBackup && (res == nil || !errors.As(err, &partial) || len(res.Stored) != 1) {
				t.Fatalf("result %+v, error %v: want it stored on good only", res, err)
			}
			for name, file := range left {
				_, statErr := os.Stat(file)
				if swept := os.IsNotExist(statErr); swept != tc.swept[name] {
					t.Errorf("target %s: swept %v, want %v", name, swept, tc.swept[name])
				}
			}
		})
	}
}

// leftover puts on s what a backup killed a day ago left: its artifact, without a manifest.
func leftover(t *testing.T, s *shelf) string {
	t.Helper()
	key := artifact.Key(artifact.KeyParts{Project: "shop", Service: "db", Strategy: "volume", Ext: "tar", Compression: artifact.Zstd, At: time.Now().Add(-24 * time.Hour)})
	if err := target.ValidateKey(key); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(s.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("half a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-24 * time.Hour)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	return file
}
