package sidecar

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/outcome"
	"github.com/docker-backup/docker-backup/internal/sidecar/config"
	"github.com/docker-backup/docker-backup/internal/target"
)

const signingSecret = "the sidecar's signing key, 32 bytes or more"

// rig is a sidecar of project shop on the fake Engine: the sidecar's own container (found by
// host name, as in a real container), the project's services, two directory targets (one
// defined by the sidecar's own label), and its state in a temporary directory.
type rig struct {
	t                *testing.T
	engine           *enginetest.Engine
	d                *Daemon
	dflt, offsite    string // the targets' directories
	signer, stranger *artifact.SigningKey
}

func newRig(t *testing.T, services ...*enginetest.ContainerSpec) *rig {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dflt: t.TempDir(), offsite: t.TempDir()}
	state := t.TempDir()
	keyFile := filepath.Join(state, "given.key")
	if err := os.WriteFile(keyFile, []byte(signingSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	r.signer, _ = artifact.NewSigningKey([]byte(signingSecret))
	r.stranger, _ = artifact.NewSigningKey([]byte("somebody else's key, 32 bytes or more"))
	self := enginetest.Service("shop", "backup", enginetest.WithID(host), enginetest.Sidecar(), enginetest.WithLabel(labels.TargetOf+"offsite", r.offsite))
	r.engine = enginetest.New(append([]*enginetest.ContainerSpec{self}, services...)...)
	cfg, err := config.FromEnv([]string{config.EnvTarget + "=" + r.dflt, config.EnvState + "=" + state, config.EnvSigningKeyFile + "=" + keyFile,
		config.EnvCatalogSchedule + "=off", "DOCKER_BACKUP_WORKER=off"})
	if err != nil {
		t.Fatal(err)
	}
	if r.d, err = New(context.Background(), cfg, Options{API: r.engine, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	return r
}

// run runs the daemon until the test ends, and returns once it has read the labels.
func (r *rig) run() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.d.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("the daemon ended with %v", err)
		}
	})
	<-r.d.Synced()
}

// put stores a backup on the target in dir, signed by by (nil: unsigned), and returns its key.
func (r *rig) put(dir, project, service string, age time.Duration, by *artifact.SigningKey) string {
	r.t.Helper()
	tgt, err := target.NewLocal(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	at := time.Now().Add(-age)
	k := artifact.Key(artifact.KeyParts{Project: project, Service: service, Strategy: "volume", Ext: "tar", Compression: artifact.Zstd, At: at})
	ctx := context.Background()
	if _, err := tgt.Put(ctx, k, strings.NewReader("bytes")); err != nil {
		r.t.Fatal(err)
	}
	m := &artifact.Manifest{FormatVersion: 1, Artifact: k, Strategy: "volume", Project: project, Service: service, Container: project + "-" + service + "-1",
		CreatedAt: at.UTC(), Size: 5, RawSize: 5, SHA256: strings.Repeat("ab", 32), Compression: artifact.Zstd, Source: map[string]string{"paths": "/data"}}
	if by != nil {
		if err := by.Sign(m); err != nil {
			r.t.Fatal(err)
		}
	}
	b, _ := m.Marshal()
	if _, err := tgt.Put(ctx, artifact.ManifestKey(k), bytes.NewReader(b)); err != nil {
		r.t.Fatal(err)
	}
	return k
}

// The sidecar finds its own container, manages its project, adds the targets its labels
// define, and turns the services' labels into jobs: an enabled service with a schedule is a
// job; one without, backed up by hand only; labels on a service not enabled, or a bad value,
// are problems; the sidecar itself, a one-off and another project's services are none of it.
func TestDaemonStatus(t *testing.T) {
	r := newRig(t,
		enginetest.Service("shop", "db", enginetest.WithVolume("pgdata", "/data"),
			enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "0 2 * * *", labels.Strategy: "volume", labels.Prefix + "retention": "keep-daily=7"})),
		enginetest.Service("shop", "db", enginetest.OneOff(), enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "@hourly"})),
		enginetest.Service("shop", "migrate", enginetest.OneOff(), enginetest.WithVolume("m", "/data"), enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "@hourly"})),
		enginetest.Service("shop", "backup2", enginetest.Sidecar(), enginetest.WithVolume("s", "/data"), enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "@hourly"})),
		enginetest.Service("shop", "cache", enginetest.WithVolume("cache", "/data"), enginetest.WithLabel(labels.Enable, "true")),
		enginetest.Service("shop", "web", enginetest.WithLabel(labels.Schedule, "@daily")),
		enginetest.Service("shop", "queue", enginetest.WithVolume("q", "/data"), enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "daily"})),
		enginetest.Service("blog", "db", enginetest.WithVolume("b", "/data"), enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "@daily"})),
	)
	r.run()
	st, err := r.d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Project != "shop" || st.AllProjects || st.Host != "fake-engine" || st.SigningKey != r.signer.ID() || st.PublicKey != r.signer.Public().String() {
		t.Errorf("status %+v", st)
	}
	var targets []string
	for _, tg := range st.Targets {
		targets = append(targets, tg.Name+"="+tg.URL)
	}
	if want := []string{"default=" + r.dflt, "offsite=" + r.offsite}; !slices.Equal(targets, want) {
		t.Errorf("targets %v, want %v", targets, want)
	}
	var jobs []string
	for _, j := range st.Jobs {
		jobs = append(jobs, j.Project+"/"+j.Service+"/"+j.Job+" "+j.Strategy+" "+j.Schedule+" "+j.Retention+" "+j.Target+" "+j.Container)
	}
	if want := []string{"shop/db/default volume 0 2 * * * keep-daily=7 default shop-db-1"}; !slices.Equal(jobs, want) {
		t.Errorf("jobs %q, want %q", jobs, want)
	}
	if !slices.Equal(st.Unscheduled, []string{"cache"}) {
		t.Errorf("unscheduled %v", st.Unscheduled)
	}
	problems := strings.Join(st.Problems, "\n")
	for _, want := range []string{"container shop-web-1: has docker-backup.* labels but not docker-backup.enable=true", `shop-queue-1`} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not say %q:\n%s", want, problems)
		}
	}
	if len(st.Problems) != 2 {
		t.Errorf("%d problems:\n%s", len(st.Problems), problems)
	}
}

// The sidecar lists the backups of its targets by the one rule (selection): of a project and
// service when asked, each with why its keys do not vouch for it; a target it does not have
// is not found.
func TestDaemonBackups(t *testing.T) {
	r := newRig(t)
	mine := r.put(r.dflt, "shop", "db", time.Hour, r.signer)
	unsigned := r.put(r.dflt, "shop", "db", 2*time.Hour, nil)
	foreign := r.put(r.dflt, "shop", "db", 3*time.Hour, r.stranger)
	web := r.put(r.dflt, "shop", "web", time.Hour, r.signer)
	blog := r.put(r.dflt, "blog", "db", time.Hour, r.signer)
	off := r.put(r.offsite, "shop", "db", time.Hour, r.signer)
	ctx := context.Background()
	for _, tc := range []struct {
		name, target, project, service string
		want                           map[string][]string // by target
	}{
		{"one service", "", "shop", "db", map[string][]string{"default": {mine, unsigned, foreign}, "offsite": {off}}},
		{"one service, one target", "offsite", "shop", "db", map[string][]string{"offsite": {off}}},
		{"a project", "default", "shop", "", map[string][]string{"default": {mine, web, unsigned, foreign}}},
		{"everything", "default", "", "", map[string][]string{"default": {mine, web, blog, unsigned, foreign}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lists, err := r.d.Backups(ctx, tc.target, tc.project, tc.service)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, l := range lists {
				got[l.Target] = []string{}
				for _, b := range l.Backups {
					got[l.Target] = append(got[l.Target], b.Key)
					if trusted := b.Key != unsigned && b.Key != foreign; trusted != (b.Untrusted == "") {
						t.Errorf("%s: untrusted %q", b.Key, b.Untrusted)
					}
				}
				slices.Sort(got[l.Target])
			}
			for k := range tc.want {
				slices.Sort(tc.want[k])
			}
			if len(got) != len(tc.want) {
				t.Errorf("targets %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if !slices.Equal(got[k], v) {
					t.Errorf("target %s: %v, want %v", k, got[k], v)
				}
			}
		})
	}
	_, err := r.d.Backups(ctx, "nope", "", "")
	if outcome.Code(err) != control.CodeNotFound || !strings.Contains(err.Error(), `no target "nope" on the sidecar (targets: default, offsite)`) {
		t.Errorf("no such target: %v", err)
	}
}

// What the sidecar refuses to run, restore or verify, with the code the plugin acts on —
// before it touches anything.
func TestDaemonRefuses(t *testing.T) {
	r := newRig(t,
		enginetest.Service("shop", "db", enginetest.WithVolume("pgdata", "/data"),
			enginetest.WithLabels(map[string]string{labels.Enable: "true", labels.Schedule: "0 2 * * *", labels.Strategy: "volume"})),
		enginetest.Service("shop", "web", enginetest.WithVolume("w", "/data"), enginetest.WithLabel(labels.Enable, "false")),
		enginetest.Service("shop", "files", enginetest.WithVolume("f", "/data"), enginetest.WithLabel(labels.Enable, "true")),
	)
	r.run()
	webBackup := r.put(r.dflt, "shop", "web", time.Hour, r.signer)
	unsigned := r.put(r.dflt, "shop", "db", time.Hour, nil)
	discard := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		do   func() error
		code string
		says string
	}{
		{"run of no such service", func() error {
			_, err := r.d.RunBackup(control.RunRequest{Service: "nosuch"}, discard.Handler())
			return err
		},
			control.CodeNotFound, `compose project "shop" has no service "nosuch"`},
		{"run of no such job", func() error {
			_, err := r.d.RunBackup(control.RunRequest{Service: "db", Job: "hourly"}, discard.Handler())
			return err
		}, control.CodeNotFound, `service db has no job "hourly" (its jobs: default)`},
		{"run of a job of an unscheduled service", func() error {
			_, err := r.d.RunBackup(control.RunRequest{Service: "files", Job: "hourly"}, discard.Handler())
			return err
		}, control.CodeNotFound, `service files has no scheduled jobs, so no job "hourly"`},
		{"run of a disabled service", func() error {
			_, err := r.d.RunBackup(control.RunRequest{Service: "web"}, discard.Handler())
			return err
		},
			control.CodeRefused, "is not backed up (label docker-backup.enable=false)"},
		{"run of the sidecar itself", func() error {
			_, err := r.d.RunBackup(control.RunRequest{Service: "backup"}, discard.Handler())
			return err
		},
			control.CodeRefused, "is not backed up (the docker-backup sidecar itself)"},
		{"restore from no such target", func() error {
			_, err := r.d.Restore(control.RestoreRequest{Service: "db", Key: "latest", Target: "nope"}, discard)
			return err
		}, control.CodeNotFound, `no target "nope" on the sidecar`},
		{"restore of another service's backup", func() error {
			_, err := r.d.Restore(control.RestoreRequest{Service: "db", Key: webBackup}, discard)
			return err
		}, control.CodeRefused, "it is a backup of shop/web"},
		{"restore of an unsigned backup", func() error {
			_, err := r.d.Restore(control.RestoreRequest{Service: "db", Key: unsigned}, discard)
			return err
		}, control.CodeUntrusted, "--allow-unsigned"},
		{"restore of latest, none trusted", func() error {
			_, err := r.d.Restore(control.RestoreRequest{Service: "db", Key: "latest"}, discard)
			return err
		}, control.CodeUntrusted, "no backup of service \"db\""},
		{"verify on no such target", func() error {
			_, err := r.d.Verify(control.VerifyRequest{Service: "db", Key: "latest", Target: "nope"}, discard)
			return err
		}, control.CodeNotFound, `no target "nope" on the sidecar`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("not refused")
			}
			if got := outcome.Code(err); got != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s: %v; want %s saying %q", got, err, tc.code, tc.says)
			}
			if touched := r.engine.Calls("ContainerStop", "ContainerStart", "ExecCreate", "CopyToContainer", "ContainerCreate"); len(touched) != 0 {
				t.Errorf("touched: %v", touched)
			}
		})
	}
}

// Ready says what is not: the engine, then the catalog.
func TestDaemonReady(t *testing.T) {
	r := newRig(t)
	if err := r.d.Ready(context.Background()); err != nil {
		t.Errorf("not ready: %v", err)
	}
	r.engine.OnCall = func(c enginetest.Call) error {
		if c.Method == "Info" {
			return errors.New("connection refused")
		}
		return nil
	}
	if err := r.d.Ready(context.Background()); err == nil || err.Error() != "docker engine: connection refused" {
		t.Errorf("engine down: %v", err)
	}
	r.engine.OnCall = nil
	r.d.Close()
	if err := r.d.Ready(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "catalog: ") {
		t.Errorf("catalog closed: %v", err)
	}
}

// A service enabled without a schedule is backed up by hand through the sidecar: detected
// strategy, default target, signed with the sidecar's key, recorded as a one-off run; and
// restored as latest into it, stopped for that and started again.
func TestDaemonBacksUpAndRestoresByHand(t *testing.T) {
	r := newRig(t, enginetest.Service("shop", "files", enginetest.WithVolume("f", "/data"), enginetest.WithLabel(labels.Enable, "true"),
		enginetest.WithFile("/data/a.txt", "hello"), enginetest.WithFile("/data/sub/b.txt", "world")))
	r.run()
	var logged strings.Builder
	res, err := r.d.RunBackup(control.RunRequest{Service: "files"}, slog.NewTextHandler(&logged, nil))
	if err != nil {
		t.Fatalf("%v\n%s", err, logged.String())
	}
	if res.Target != "default" || res.Backup == nil || res.Backup.Strategy != "volume" || res.Backup.KeyID != r.signer.ID() || !strings.HasPrefix(res.Key, "shop/files/files-volume-") {
		t.Errorf("result %+v, backup %+v", res, res.Backup)
	}
	lists, err := r.d.Backups(context.Background(), "default", "shop", "files")
	if err != nil || len(lists) != 1 || len(lists[0].Backups) != 1 || lists[0].Backups[0].Key != res.Key || lists[0].Backups[0].Untrusted != "" {
		t.Errorf("listed %+v, %v", lists, err)
	}
	st, err := r.d.Status(context.Background())
	if err != nil || len(st.OneOff) != 1 || st.OneOff[0].Status != control.Success || st.OneOff[0].Key != res.Key {
		t.Errorf("one-off runs %+v, %v", st.OneOff, err)
	}

	// Restored as latest: the files are back, the service stopped for it and running again.
	r.engine.Set("shop-files-1", func(c *enginetest.ContainerSpec) {
		c.Files["/data/a.txt"] = enginetest.File{Path: "/data/a.txt", Content: "changed", Mode: 0o644}
	})
	restored, err := r.d.Restore(control.RestoreRequest{Service: "files", Key: "latest"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.engine.Get("shop-files-1")
	if restored.Key != res.Key || c.Files["/data/a.txt"].Content != "hello" || c.Files["/data/sub/b.txt"].Content != "world" || !c.Running {
		t.Errorf("restored %s: files %+v, running %v", restored.Key, c.Files, c.Running)
	}
	if calls := r.engine.Calls("ContainerStop", "ContainerStart"); len(calls) != 2 {
		t.Errorf("stops and starts: %v", calls)
	}
	st, _ = r.d.Status(context.Background())
	if len(st.Restores) != 1 || st.Restores[0].Status != control.Success {
		t.Errorf("restores %+v", st.Restores)
	}
}

// TestUploadCapOfAnUnknownTarget: a target's cap naming no target is refused at start, with
// the variable that set it.
func TestUploadCapOfAnUnknownTarget(t *testing.T) {
	for name, variable := range map[string]string{"nas-box": "DOCKER_BACKUP_TARGET_NAS_BOX_LIMIT_UPLOAD", "default": "DOCKER_BACKUP_TARGET_LIMIT_UPLOAD"} {
		d := &Daemon{cfg: config.Config{Targets: map[string]string{"offsite": t.TempDir()}, TargetLimits: map[string]bandwidth.Rate{name: 1 << 20}}}
		if err := d.openTargets(); err == nil || !strings.Contains(err.Error(), variable) || !strings.Contains(err.Error(), "targets: offsite") {
			t.Errorf("%s: %v", name, err)
		}
	}
	d := &Daemon{cfg: config.Config{Targets: map[string]string{"offsite": t.TempDir()}, TargetLimits: map[string]bandwidth.Rate{"offsite": 0}}}
	if err := d.openTargets(); err != nil {
		t.Error(err)
	}
}
