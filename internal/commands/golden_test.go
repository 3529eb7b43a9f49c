package commands

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/commands/keys"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/golden"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/plan"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker/cli/cli"
	"github.com/moby/moby/api/types/volume"
)

// What the commands print is compared with the files under testdata: a change of output is
// a reviewed diff. `go test ./internal/commands -update` rewrites them.
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const (
	testSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	dbKey   = "shop/db/db-postgres-20261207T020000.000Z-0a1b2c3d.sql.zst"
	keyID   = "ed25519:1a2b3c4d5e6f7081"
)

// printed is what the command printed: its standard output, then its standard error.
func (f *fakeCli) printed() []byte {
	return []byte("--- stdout\n" + f.out.String() + "--- stderr\n" + f.err.String())
}

// exitStatus is the status the docker CLI exits with after err.
func exitStatus(err error) int {
	var se cli.StatusError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		return se.StatusCode
	}
	return 1
}

// sidecarBackups are what the fake sidecars list: of shop/db, on two targets.
func sidecarBackups() []control.Backups {
	b := func(key string, age time.Duration, untrusted string) control.Backup {
		return control.Backup{Key: key, Project: "shop", Service: "db", Container: "shop-db-1", Strategy: "postgres",
			CreatedAt: testNow.Add(-age), DurationMS: 1200, Size: 5 << 20, RawSize: 48 << 20, SHA256: testSHA, KeyID: keyID, Untrusted: untrusted}
	}
	newest := b("shop/db/db-postgres-20261207T110000.000Z-99999999.sql.zst", time.Hour, "the manifest is not signed")
	newest.KeyID = ""
	nightly := b(dbKey, 10*time.Hour, "")
	nightly.Job = "default"
	return []control.Backups{
		{Target: "default", URL: "/backups", Backups: []control.Backup{newest, nightly}},
		{Target: "offsite", URL: "s3://bucket/site-a", Backups: []control.Backup{b("shop/db/db-postgres-20261206T020000.000Z-0f0f0f0f.sql.zst", 34*time.Hour, "")},
			Problems: []string{"shop/db/broken.sql.zst: manifest has no strategy"}},
	}
}

func TestStatusThroughTheSidecar(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			api := enginetest.New(enginetest.Service("shop", "db"))
			sc := &fakeSidecar{status: sidecarStatus()}
			withSidecar(api, "shop", sc)
			cli := newFakeCli(api)
			if err := cli.run(t, "status", "--format", format); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "status-"+format+".golden", cli.printed(), *update)
		})
	}
}

// A backup by the sidecar prints its log and its result as a direct one does; a failure ends
// as package outcome says, whatever path.
func TestRunThroughTheSidecar(t *testing.T) {
	made := &control.Result{Key: dbKey, Target: "default,offsite", Duration: 4620 * time.Millisecond,
		Backup: &control.Backup{Key: dbKey, Project: "shop", Service: "db", Container: "shop-db-1", Strategy: "postgres", CreatedAt: testNow,
			Size: 5 << 20, RawSize: 48 << 20, SHA256: testSHA, KeyID: keyID},
		Pruned: []string{"shop/db/db-postgres-20261130T020000.000Z-01020304.sql.zst"}}
	for _, tc := range []struct {
		name   string
		args   []string
		result *control.Result
		err    error
		asked  string
		exit   int
		says   string
	}{
		{name: "stored", args: []string{"run", "db"}, result: made, asked: "run shop/db/"},
		{name: "a job", args: []string{"run", "db/nightly"}, result: made, asked: "run shop/db/nightly"},
		{name: "stored, retention failed", args: []string{"run", "db"}, result: made, err: errors.New("pruning: target offline"), asked: "run shop/db/",
			exit: 1, says: "the backup is stored, but: pruning: target offline"},
		{name: "refused", args: []string{"run", "web"}, err: &control.Error{Code: control.CodeRefused, Message: "shop/web (container shop-web-1) is not backed up (label docker-backup.enable=false)"},
			asked: "run shop/web/", exit: 1, says: "shop/web (container shop-web-1) is not backed up (label docker-backup.enable=false)"},
		{name: "busy", args: []string{"run", "db"}, err: &control.Error{Code: control.CodeBusy, Message: "a restore of shop/db runs"},
			asked: "run shop/db/", exit: 1, says: "a restore of shop/db runs"},
		{name: "failed", args: []string{"run", "db"}, err: errors.New("pg_dump exited with code 1: connection refused"), asked: "run shop/db/",
			exit: 1, says: "backup failed, nothing was stored: pg_dump exited with code 1: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := enginetest.New(enginetest.Service("shop", "db"), enginetest.Service("shop", "web"))
			sc := &fakeSidecar{result: tc.result, err: tc.err, log: []string{"stopping container", "warn the server is older than the dump"}}
			withSidecar(api, "shop", sc)
			cli := newFakeCli(api)
			err := cli.run(t, tc.args...)
			if got := exitStatus(err); got != tc.exit || (err != nil && err.Error() != tc.says) {
				t.Errorf("exit %d, %v; want %d, %q", got, err, tc.exit, tc.says)
			}
			if got := sc.Asked(); got != tc.asked {
				t.Errorf("asked %q, want %q", got, tc.asked)
			}
			if tc.name == "stored" || tc.name == "stored, retention failed" {
				golden.Check(t, "run-sidecar-"+strings.ReplaceAll(strings.ReplaceAll(tc.name, ",", ""), " ", "-")+".golden", cli.printed(), *update)
			}
		})
	}
}

// A direct backup of a service's volume (through the Engine's archive API) prints its result;
// what changes from run to run (the key's stamp, the time it took, the directory) is masked,
// and so are the sizes and checksum, which change with the archive's and the compression's
// format, not the output's.
func TestRunDirect(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(worker.EnvMode, "off")
	t.Setenv(keys.EnvSigningKey, signingKeyFile(t))
	dir := t.TempDir()
	api := enginetest.New(enginetest.Service("shop", "files", enginetest.WithVolume("files", "/data"),
		enginetest.WithFile("/data/a.txt", strings.Repeat("a", 4096)), enginetest.WithFile("/data/sub/b.txt", "b")))
	cli := newFakeCli(api)
	if err := cli.run(t, "run", "files", "--project", "shop", "--to", dir); err != nil {
		t.Fatalf("%v\n%s", err, cli.err.String())
	}
	masked := regexp.MustCompile(`\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}`).ReplaceAllString(string(cli.printed()), "STAMP-RANDOM")
	masked = regexp.MustCompile(` in [0-9.]+[µm]?s\n`).ReplaceAllString(masked, " in TIME\n")
	masked = regexp.MustCompile(`rate     .*\n`).ReplaceAllString(masked, "rate     RATE\n")
	masked = regexp.MustCompile(`size     [0-9.]+[KMG]?i?B stored, [0-9.]+[KMG]?i?B of data \([0-9.]+x\)`).ReplaceAllString(masked, "size     STORED stored, RAW of data (RATIOx)")
	masked = regexp.MustCompile(`sha256   [0-9a-f]{64}`).ReplaceAllString(masked, "sha256   SHA256")
	masked = strings.ReplaceAll(masked, dir, "DIR")
	golden.Check(t, "run-direct.golden", []byte(masked), *update)
	if calls := api.Calls("ContainerStop", "ContainerStart"); len(calls) != 0 {
		t.Errorf("stopped without --stop: %v", calls)
	}
}

// signingKeyFile is a signing key of a fixed secret: the same key ID on every run.
func signingKeyFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "signing.key")
	if err := os.WriteFile(f, []byte("a fixed secret for the tests' signing key"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLsThroughTheSidecar(t *testing.T) {
	for _, tc := range []struct {
		name, golden string
		args         []string
		asked        string
	}{
		{"table", "ls-sidecar.golden", []string{"ls"}, "backups target= project= service="},
		{"one service", "", []string{"ls", "--project", "shop", "--service", "db"}, "backups target= project=shop service=db"},
		{"json", "ls-sidecar-json.golden", []string{"ls", "--format", "json"}, "backups target= project= service="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := enginetest.New(enginetest.Service("shop", "db"))
			sc := &fakeSidecar{backups: sidecarBackups()}
			withSidecar(api, "shop", sc)
			cli := newFakeCli(api)
			if err := cli.run(t, tc.args...); err != nil {
				t.Fatal(err)
			}
			if got := sc.Asked(); got != tc.asked {
				t.Errorf("asked %q, want %q", got, tc.asked)
			}
			if tc.golden != "" {
				golden.Check(t, tc.golden, cli.printed(), *update)
			}
		})
	}
}

// ls --from lists a directory's backups by their manifests, trusting the plugin's key.
func TestLsFrom(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(keys.EnvSigningKey, signingKeyFile(t))
	mine, err := artifact.LoadSigningKey(os.Getenv(keys.EnvSigningKey))
	if err != nil {
		t.Fatal(err)
	}
	theirs, _ := artifact.NewSigningKey([]byte("another host's key, 32 bytes or more"))
	dir := t.TempDir()
	put := func(key, service string, age time.Duration, by *artifact.SigningKey, encrypted bool) {
		tgt, _ := target.NewLocal(dir)
		ctx := context.Background()
		if _, err := tgt.Put(ctx, key, strings.NewReader("compressed bytes")); err != nil {
			t.Fatal(err)
		}
		m := &artifact.Manifest{FormatVersion: 1, Artifact: key, Strategy: "postgres", Project: "shop", Service: service, Container: "shop-" + service + "-1",
			CreatedAt: testNow.Add(-age), DurationMS: 1200, Size: 16, RawSize: 100, SHA256: testSHA, Compression: artifact.Zstd}
		if encrypted {
			m.Encryption = &artifact.Encryption{Scheme: artifact.EncryptionAge, Recipients: []string{"age1qyqszqgpqyqszqgp"}}
		}
		if by != nil {
			if err := by.Sign(m); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := m.Marshal()
		if _, err := tgt.Put(ctx, artifact.ManifestKey(key), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	put(dbKey, "db", 10*time.Hour, mine, false)
	put("shop/db/db-postgres-20261207T110000.000Z-11111111.sql.zst", "db", time.Hour, nil, false)
	put("shop/db/db-postgres-20261209T020000.000Z-22222222.sql.zst", "db", -38*time.Hour, mine, false)
	put("shop/files/files-postgres-20261206T020000.000Z-33333333.sql.zst", "files", 34*time.Hour, theirs, true)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ls-from", []string{"ls", "--from", dir}},
		{"ls-from-json", []string{"ls", "--from", dir, "--service", "db", "--format", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newFakeCli(nil)
			if err := cli.run(t, tc.args...); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tc.name+".golden", cli.printed(), *update)
		})
	}
}

// A verify by the sidecar: the plugin takes latest by the one rule over the sidecar's
// listing, the sidecar verifies it, the plugin prints the report and exits 4 when it failed.
func TestVerifyThroughTheSidecar(t *testing.T) {
	report := func(passed bool) *control.Result {
		r := &control.VerifyReport{Backup: dbKey, Service: "shop/db", Strategy: "postgres", Image: "postgres:16", ImageID: "sha256:0123456789abcdef",
			Started: testNow, Duration: 12.3, Passed: passed, Checks: []control.VerifyCheck{
				{Name: "table public.orders", Expected: "1000", Found: "1000", Passed: true},
				{Name: "table public.users", Expected: "10", Found: "10", Passed: true}}}
		if !passed {
			r.Checks[1].Found, r.Checks[1].Passed = "9", false
		}
		return &control.Result{Key: dbKey, Target: "default", Verify: r}
	}
	for _, tc := range []struct {
		name   string
		args   []string
		result *control.Result
		err    error
		exit   int
		asked  string
		says   string
	}{
		{name: "passed", args: []string{"verify", "latest", "--service", "db"}, result: report(true),
			asked: "backups target= project=shop service=db; verify shop/db " + dbKey + " on default"},
		{name: "failed", args: []string{"verify", "latest", "--service", "db"}, result: report(false), exit: 4,
			asked: "backups target= project=shop service=db; verify shop/db " + dbKey + " on default",
			says:  "verify failed: " + dbKey + " of shop/db: table public.users: expected 10, found 9"},
		{name: "could not run", args: []string{"verify", "latest", "--service", "db"}, err: errors.New("the scratch copy did not start"), exit: 1,
			asked: "backups target= project=shop service=db; verify shop/db " + dbKey + " on default", says: "verify could not run: the scratch copy did not start"},
		{name: "unsigned allowed: the newest", args: []string{"verify", "latest", "--service", "db", "--allow-unsigned"}, result: report(true),
			asked: "backups target= project=shop service=db; verify shop/db shop/db/db-postgres-20261207T110000.000Z-99999999.sql.zst on default"},
		{name: "a key on another target", args: []string{"verify", "shop/db/db-postgres-20261206T020000.000Z-0f0f0f0f.sql.zst", "--service", "db"}, result: report(true),
			asked: "backups target= project=shop service=db; verify shop/db shop/db/db-postgres-20261206T020000.000Z-0f0f0f0f.sql.zst on offsite"},
		{name: "no such key", args: []string{"verify", "shop/db/nope.sql.zst", "--service", "db"}, exit: 1, asked: "backups target= project=shop service=db",
			says: `no backup "shop/db/nope.sql.zst" of shop/db (container shop-db-1) that can be verified on the targets of sidecar shop-backup-1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := enginetest.New(enginetest.Service("shop", "db"))
			sc := &fakeSidecar{backups: sidecarBackups(), result: tc.result, err: tc.err, log: []string{"creating the scratch copy"}}
			withSidecar(api, "shop", sc)
			cli := newFakeCli(api)
			err := cli.run(t, tc.args...)
			if got := exitStatus(err); got != tc.exit || (err != nil && !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("exit %d, %v; want %d, %q", got, err, tc.exit, tc.says)
			}
			if got := sc.Asked(); got != tc.asked {
				t.Errorf("asked %q\nwant     %q", got, tc.asked)
			}
			if tc.name == "passed" || tc.name == "failed" {
				golden.Check(t, "verify-sidecar-"+tc.name+".golden", cli.printed(), *update)
			}
		})
	}
}

// A restore by the sidecar ends as a direct one does: exit 3 when the service may be partly
// restored, 1 for any other failure, with the same words.
func TestRestoreThroughTheSidecar(t *testing.T) {
	restored := &control.Result{Key: dbKey, Target: "default", Backup: &control.Backup{Key: dbKey, SHA256: testSHA}}
	for _, tc := range []struct {
		name   string
		args   []string
		result *control.Result
		err    error
		exit   int
		asked  string
		out    string
		says   string
	}{
		{name: "latest", args: []string{"restore", "latest", "--to", "db", "--yes"}, result: restored,
			asked: "backups target= project=shop service=db; restore shop/db latest from default",
			out:   "Restored " + dbKey + " into shop/db (container shop-db-1) (sha256 9f86d081884c verified, by sidecar shop-backup-1)\n"},
		{name: "partly restored", args: []string{"restore", "latest", "--to", "db", "--yes"},
			err:  &plan.RestoreError{Err: errors.New("psql exited with code 3"), Partial: true, State: "some tables are restored, others not"},
			exit: 3, asked: "backups target= project=shop service=db; restore shop/db latest from default",
			says: "restore failed, the service may be partly restored: psql exited with code 3; some tables are restored, others not"},
		{name: "refused", args: []string{"restore", dbKey, "--to", "db", "--yes"}, err: plan.ErrRefused, exit: 1,
			asked: "backups target= project=shop service=db; restore shop/db " + dbKey + " from default", says: "the backup does not fit the service"},
		{name: "failed", args: []string{"restore", dbKey, "--to", "db", "--yes"}, err: errors.New("target offline"), exit: 1,
			asked: "backups target= project=shop service=db; restore shop/db " + dbKey + " from default", says: "restore failed: target offline"},
		{name: "without confirmation", args: []string{"restore", dbKey, "--to", "db"}, exit: 1, asked: "backups target= project=shop service=db",
			says: "refusing without confirmation: stdin is not a terminal, pass --yes to confirm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := enginetest.New(enginetest.Service("shop", "db"))
			sc := &fakeSidecar{backups: sidecarBackups(), result: tc.result, err: tc.err}
			withSidecar(api, "shop", sc)
			cli := newFakeCli(api)
			err := cli.run(t, tc.args...)
			if got := exitStatus(err); got != tc.exit || (err != nil && !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("exit %d, %v; want %d, %q", got, err, tc.exit, tc.says)
			}
			if got := sc.Asked(); got != tc.asked {
				t.Errorf("asked %q\nwant     %q", got, tc.asked)
			}
			if cli.out.String() != tc.out {
				t.Errorf("printed %q, want %q", cli.out.String(), tc.out)
			}
		})
	}
}

func TestDetectGolden(t *testing.T) {
	t.Setenv(worker.EnvMode, "off")
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			api := enginetest.New(
				enginetest.Service("shop", "db", enginetest.WithImage("postgres:16"), enginetest.WithVolume("pgdata", "/var/lib/postgresql/data")),
				enginetest.Service("shop", "cache", enginetest.WithImage("redis:7"), enginetest.WithEnv("REDIS_VERSION=7.2.4"), enginetest.WithVolume("cache", "/data"), enginetest.Stopped()),
				enginetest.Service("shop", "files", enginetest.WithImage("example/app"), enginetest.WithVolume("uploads", "/srv/uploads"), enginetest.WithBind("/etc/app", "/config")),
				enginetest.Service("shop", "web", enginetest.WithImage("nginx:1.27")),
				enginetest.Service("shop", "old", enginetest.WithImage("mysql:8"), enginetest.WithVolume("old", "/var/lib/mysql"), enginetest.WithLabel(labels.Enable, "false")),
				enginetest.Service("shop", "backup", enginetest.Sidecar(), enginetest.WithVolume("state", "/var/lib/docker-backup")),
				enginetest.Service("shop", "media", enginetest.WithImage("example/media"), enginetest.WithVolume("media", "/media"),
					enginetest.WithLabel("docker-backup.exclude", "*.tmp, thumbs/")),
			)
			// The worker is off: the Engine's own sizes of the named volumes (bind mounts unknown).
			api.AddVolume(volume.Volume{Name: "uploads", Driver: "local", UsageData: &volume.UsageData{Size: 1234567, RefCount: 1}},
				volume.Volume{Name: "media", Driver: "local", UsageData: &volume.UsageData{Size: 5 << 30, RefCount: 1}})
			cli := newFakeCli(api)
			if err := cli.run(t, "detect", "--format", format); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "detect-"+format+".golden", cli.printed(), *update)
		})
	}
}
