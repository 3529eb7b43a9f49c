package labels

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/retention"
)

var opts = Options{
	Strategies:       []string{"mongo", "mysql", "postgres", "redis", "sqlite", "volume"},
	Targets:          []string{"local", "offsite"},
	NotifySets:       []string{"default", "ops"},
	DefaultRetention: retention.Policy{Last: 7},
}

func TestParseJobs(t *testing.T) {
	jobs, errs := Parse("shop-db-1", map[string]string{
		"docker-backup.enable":           "true",
		"docker-backup.strategy":         "postgres",
		"docker-backup.schedule":         "CRON_TZ=Europe/Berlin 0 2 * * *",
		"docker-backup.retention":        "keep-daily=7,keep-weekly=4",
		"docker-backup.target":           "offsite",
		"docker-backup.pre":              `psql -c "SELECT 'checkpoint'"`,
		"docker-backup.weekly.strategy":  "volume",
		"docker-backup.weekly.schedule":  "@weekly",
		"docker-backup.weekly.paths":     "/var/lib/postgresql/data/, /etc/app",
		"docker-backup.weekly.exclude":   "*.log, pg_wal/,, /tmp/**",
		"docker-backup.weekly.stop":      "true",
		"docker-backup.weekly.retention": "4",
		"docker-backup.weekly.post":      `["sh", "-c", "echo done > /tmp/x"]`,
		"com.docker.compose.service":     "db",
	}, opts)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := []Job{
		{Name: "default", Strategy: "postgres", Schedule: "CRON_TZ=Europe/Berlin 0 2 * * *", Retention: retention.Policy{Daily: 7, Weekly: 4},
			Target: "offsite", Pre: []string{"psql", "-c", "SELECT 'checkpoint'"}},
		{Name: "weekly", Strategy: "volume", Schedule: "@weekly", Retention: retention.Policy{Last: 4}, Target: "offsite",
			Paths: []string{"/var/lib/postgresql/data", "/etc/app"}, Exclude: []string{"*.log", "pg_wal/", "/tmp/**"}, Stop: true,
			Pre: []string{"psql", "-c", "SELECT 'checkpoint'"}, Post: []string{"sh", "-c", "echo done > /tmp/x"}},
	}
	if !reflect.DeepEqual(jobs, want) {
		t.Errorf("jobs:\n%+v\nwant\n%+v", jobs, want)
	}
}

func TestNoScheduleNoDefaultJob(t *testing.T) {
	// Plain keys without a schedule are only defaults for the named jobs.
	jobs, errs := Parse("c", map[string]string{
		"docker-backup.target":           "local",
		"docker-backup.nightly.schedule": "@daily",
	}, opts)
	if len(errs) > 0 || len(jobs) != 1 || jobs[0].Name != "nightly" || jobs[0].Target != "local" || jobs[0].Retention != opts.DefaultRetention {
		t.Errorf("jobs %+v, errors %v", jobs, errs)
	}
}

func TestInvalidLabels(t *testing.T) {
	cases := []struct {
		labels map[string]string
		label  string
		want   string
	}{
		{map[string]string{"docker-backup.schedule": "0 25 * * *"}, "docker-backup.schedule", "not a schedule"},
		{map[string]string{"docker-backup.schedule": "every day"}, "docker-backup.schedule", "5 fields"},
		{map[string]string{"docker-backup.schedule": "0 2 31 2 *"}, "docker-backup.schedule", "never fires"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.hook-timeout": "soon"}, "docker-backup.hook-timeout", "duration"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.verify": "weekly"}, "docker-backup.verify", "verify takes a schedule"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.strategy": "oracle"}, "docker-backup.strategy", "unknown strategy: use one of mongo, mysql"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.retention": "-1"}, "docker-backup.retention", "positive number"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.target": "nas"}, "docker-backup.target", "defined: local, offsite"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.paths": "/data/../etc"}, "docker-backup.paths", "without . or .."},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.paths": "data"}, "docker-backup.paths", "absolute"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.paths": "/"}, "docker-backup.paths", "not /"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.stop": "yes please"}, "docker-backup.stop", "true or false"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.exclude": "*.log,cache/[a-"}, "docker-backup.exclude", `exclude pattern "cache/[a-"`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.exclude": "../up"}, "docker-backup.exclude", "a trailing / matches directories only"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.strategy": "postgres", "docker-backup.exclude": "*.log"}, "docker-backup.exclude", "apply to the volume strategy only"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.pre": `echo "unterminated`}, "docker-backup.pre", "cannot split"},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.post": `["sh", 3]`}, "docker-backup.post", "JSON array"},
		{map[string]string{"docker-backup.shedule": "@daily"}, "docker-backup.shedule", `unknown key "shedule"`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.notify": "pager"}, "docker-backup.notify", `no notification URL set "pager" (sets: default, ops; define one with DOCKER_BACKUP_NOTIFY_URLS_PAGER)`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.notify": "Ops!"}, "docker-backup.notify", `"default" or "off"`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.ping": "hc-ping.com/uuid-secret"}, "docker-backup.ping", "http:// or https:// URL"},
		{map[string]string{"docker-backup.Nightly!.schedule": "@daily"}, "docker-backup.Nightly!.schedule", "job name"},
		{map[string]string{"docker-backup.nightly.strategy": "volume"}, "docker-backup.nightly.schedule", "needs a schedule"},
	}
	for _, tc := range cases {
		jobs, errs := Parse("shop-db-1", tc.labels, opts)
		if len(errs) == 0 {
			t.Errorf("%v: no error (jobs %+v)", tc.labels, jobs)
			continue
		}
		var e *Error
		if !errors.As(errs[0], &e) || e.Label != tc.label || e.Container != "shop-db-1" || !strings.Contains(e.Error(), tc.want) {
			t.Errorf("%v: error %v, want label %s and %q", tc.labels, errs[0], tc.label, tc.want)
		}
		if len(jobs) != 0 {
			t.Errorf("%v: an invalid job was returned: %+v", tc.labels, jobs)
		}
	}
}

func TestOneBadJobLeavesTheOthers(t *testing.T) {
	jobs, errs := Parse("c", map[string]string{
		"docker-backup.good.schedule": "@hourly",
		"docker-backup.bad.schedule":  "61 * * * *",
	}, opts)
	if len(jobs) != 1 || jobs[0].Name != "good" || len(errs) != 1 || !strings.Contains(errs[0].Error(), "docker-backup.bad.schedule") {
		t.Errorf("jobs %+v, errors %v", jobs, errs)
	}
}

func TestEnabled(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "True": true, "1": true, "false": false, "0": false} {
		if got, err := Enabled("c", map[string]string{"docker-backup.enable": v}); err != nil || got != want {
			t.Errorf("Enabled(%q) = %v, %v", v, got, err)
		}
	}
	if got, _ := Enabled("c", nil); got {
		t.Error("no label means not enabled")
	}
	if _, err := Enabled("c", map[string]string{"docker-backup.enable": "yes"}); err == nil || !strings.Contains(err.Error(), `docker-backup.enable="yes"`) {
		t.Errorf("Enabled(yes) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("schedule", "@daily", "paths", "/data,/x", "pre", `sh -c "x"`)
	f.Add("nightly.schedule", "0 2 * * *", "nightly.retention", "keep-daily=7", "post", `["a","b"]`)
	f.Add("schedule", "CRON_TZ=UTC 5 4 * * sun", "stop", "true", "target", "local")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		labels := map[string]string{Prefix + k1: v1, Prefix + k2: v2, Prefix + k3: v3}
		jobs, errs := Parse("c", labels, opts)
		for _, err := range errs {
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Label, Prefix) || e.Reason == "" {
				t.Fatalf("error without label or reason: %v", err)
			}
		}
		for _, j := range jobs {
			if j.Schedule == "" || j.Name == "" {
				t.Fatalf("job without schedule or name: %+v", j)
			}
			for _, p := range j.Paths {
				if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || p == "/" {
					t.Fatalf("unsafe path accepted: %q", p)
				}
			}
			if (j.Pre != nil && len(j.Pre) == 0) || (j.Post != nil && len(j.Post) == 0) {
				t.Fatalf("empty hook accepted: %+v", j)
			}
		}
	})
}

func TestExcluded(t *testing.T) {
	for labels, want := range map[string]string{
		"":                           "",
		"docker-backup.enable=true":  "",
		"docker-backup.enable=false": "docker-backup.enable=false",
		"docker-backup.enable=FALSE": "docker-backup.enable=false",
		"docker-backup.enable=nope":  "neither true nor false",
		"docker-backup.sidecar=true": "sidecar itself",
	} {
		m := map[string]string{}
		if k, v, ok := strings.Cut(labels, "="); ok {
			m[k] = v
		}
		if got := Excluded(m); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("Excluded(%s) = %q, want %q", labels, got, want)
		}
	}
}

func TestManualJob(t *testing.T) {
	jobs, errs := Parse("c", map[string]string{"docker-backup.paths": "/data/keep", "docker-backup.hook-timeout": "90s"}, Options{Strategies: opts.Strategies, Manual: true})
	if len(errs) > 0 || len(jobs) != 1 || jobs[0].Name != DefaultJob || jobs[0].Schedule != "" || jobs[0].Paths[0] != "/data/keep" || jobs[0].HookTimeout.Seconds() != 90 {
		t.Errorf("jobs %+v, errors %v", jobs, errs)
	}
}

func TestNotifyAndPing(t *testing.T) {
	jobs, errs := Parse("shop-db-1", map[string]string{"docker-backup.schedule": "@daily", "docker-backup.notify": "ops",
		"docker-backup.ping": "https://hc-ping.com/uuid-1", "docker-backup.quiet.schedule": "@hourly", "docker-backup.quiet.notify": "off"}, opts)
	if len(errs) > 0 || len(jobs) != 2 {
		t.Fatalf("jobs %+v, errors %v", jobs, errs)
	}
	if jobs[0].Notify != "ops" || jobs[0].Ping != "https://hc-ping.com/uuid-1" || jobs[1].Notify != "off" || jobs[1].Ping != "https://hc-ping.com/uuid-1" {
		t.Errorf("jobs %+v", jobs)
	}
	_, errs = Parse("shop-db-1", map[string]string{"docker-backup.schedule": "@daily", "docker-backup.ping": "ftp://secret-uuid"}, opts)
	if len(errs) != 1 || strings.Contains(errs[0].Error(), "secret-uuid") {
		t.Errorf("a bad ping URL: %v (the URL must not be shown)", errs)
	}
}

func TestSeveralTargets(t *testing.T) {
	jobs, errs := Parse("shop-db-1", map[string]string{"docker-backup.schedule": "@daily", "docker-backup.target": "local, offsite",
		"docker-backup.retention": "7", "docker-backup.retention.offsite": "keep-monthly=12",
		"docker-backup.weekly.schedule": "@weekly", "docker-backup.weekly.target": "local"}, opts)
	if len(errs) > 0 || len(jobs) != 2 {
		t.Fatalf("jobs %+v, errors %v", jobs, errs)
	}
	d := jobs[0]
	if d.Target != "local" || strings.Join(d.Targets, ",") != "local,offsite" || d.Retention.String() != "7" || d.TargetRetention["offsite"].String() != "keep-monthly=12" {
		t.Errorf("default job: %+v", d)
	}
	if w := jobs[1]; w.Target != "local" || w.Targets != nil || w.TargetRetention != nil {
		t.Errorf("weekly (one target, the inherited per-target retention does not apply): %+v", w)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.target": "local,nas"}, `no target "nas"`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.target": "local,local"}, `"local" is named twice`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.retention.offsite": "3"}, `does not write to several targets including "offsite"`},
		{map[string]string{"docker-backup.schedule": "@daily", "docker-backup.target": "local,offsite", "docker-backup.retention.offsite": "-2"}, "positive"},
	} {
		if _, errs := Parse("shop-db-1", tc.labels, opts); len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.labels, errs, tc.want)
		}
	}
}

// Every key of a job is documented in docs/sidecar.md, and has its own doc text here.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sidecar.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range jobKeys {
		if !strings.Contains(string(doc), "`"+Prefix+k.name+"`") || k.doc == "" {
			t.Errorf("%s%s is not in docs/sidecar.md, or has no doc text", Prefix, k.name)
		}
	}
}
