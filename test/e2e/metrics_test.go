package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAlertRulesWithPromtool checks the shipped rules and runs their unit tests.
func TestAlertRulesWithPromtool(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(fixtureRoot, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(tool(t, "promtool"), args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: `make setup` installs Debian's prometheus package", name)
	}
	return p
}

// prom is a real Prometheus server started by the test.
type prom struct {
	t    *testing.T
	addr string
}

func startPrometheus(t *testing.T, target string) *prom {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: backups-of-this-host   # any name: the rules and the dashboard do not depend on it
    static_configs:
      - targets: ["%s"]
`, filepath.Join(fixtureRoot, "deploy", "prometheus", "alerts.yml"), target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool(t, "prometheus"), "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	p := &prom{t: t, addr: addr}
	eventually(t, time.Minute, "prometheus ready", func() error {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
	return p
}

// api GETs a Prometheus API path and decodes its data.
func (p *prom) api(path string, q url.Values, data any) error {
	resp, err := http.Get("http://" + p.addr + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// query evaluates a PromQL expression now and returns how many series it gave.
func (p *prom) query(expr string) (int, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, err
	}
	return len(data.Result), nil
}

type promRule struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Health string `json:"health"`
	State  string `json:"state"`
	Alerts []struct {
		State  string            `json:"state"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func (p *prom) rules() (map[string]promRule, error) {
	var data struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
		return nil, err
	}
	out := map[string]promRule{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			out[r.Name] = r
		}
	}
	return out, nil
}

// TestMetricsWithPrometheus runs a sidecar with a healthy job, a job that starts failing, a
// job whose backups shrink, an invalid label and a retention that cannot delete, under a real
// Prometheus loaded with the shipped rules: every dashboard query returns series, every
// alert's expression is evaluated, the failure alert fires, and the metrics pass promtool.
func TestMetricsWithPrometheus(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	svc := p.volumeService
	good := svc("good", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.verify=@every 5s")
	flaky := svc("flaky", "docker-backup.schedule=@every 3s", "docker-backup.pre=test ! -e /data/fail")
	shrink := svc("shrink", "docker-backup.schedule=@every 2s")
	svc("typo", "docker-backup.schedule=@hourly", "docker-backup.retention=seven")
	for _, c := range []string{good, flaky} {
		docker(t, "exec", c, "sh", "-c", "echo data > /data/file")
	}
	docker(t, "exec", shrink, "sh", "-c", "head -c 2000000 /dev/urandom > /data/big")
	sidecar, backups := startSidecar(t, p)
	ip := strings.TrimSpace(docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", sidecar))
	metricsURL := "http://" + ip + ":9090/metrics"

	// The metrics as exposed pass promtool's lint.
	eventually(t, 30*time.Second, "metrics lint", func() error {
		body := httpGet(t, metricsURL)
		if !strings.Contains(body, "docker_backup_runs_total") {
			return fmt.Errorf("no runs metric yet")
		}
		cmd := exec.Command(tool(t, "promtool"), "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		return nil
	})
	body := httpGet(t, metricsURL)
	for _, want := range []string{
		`docker_backup_runs_total{backup_job="default",project="` + p.name + `",result="failure",service="good",strategy="volume",target="default"} 0`,
		`docker_backup_label_errors 1`, `docker_backup_jobs_configured 3`, `docker_backup_events_connected 1`, `docker_backup_catalog_up 1`,
		`docker_backup_schedule_interval_seconds{backup_job="default",project="` + p.name + `",service="good",strategy="volume",target="default"} 2`,
		`docker_backup_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "pw-") || strings.Contains(body, ".tar.zst") {
		t.Error("metrics carry a secret or an artifact key")
	}

	pr := startPrometheus(t, ip+":9090")
	waitRuns(t, p.name, "flaky", "default", 1, time.Minute)
	waitRuns(t, p.name, "shrink", "default", 1, time.Minute)
	waitRuns(t, p.name, "good", "default", 2, time.Minute)
	time.Sleep(3 * time.Second) // scraped with the big backups
	docker(t, "exec", flaky, "touch", "/data/fail")
	docker(t, "exec", shrink, "rm", "/data/big")
	// Retention of "good" cannot delete its oldest manifest: a prune error.
	// The sidecar prunes every 2 s: the oldest manifest may go between the listing and chattr.
	dir := volumeDir(t, backups)
	var immutable string
	eventually(t, 30*time.Second, "an immutable manifest of good", func() error {
		manifests, _ := filepath.Glob(filepath.Join(dir, p.name, "good", "*.manifest.json"))
		if len(manifests) == 0 {
			return fmt.Errorf("no manifest of good on the target")
		}
		oldest := manifests[0] // sorted by name = by time
		if out, err := exec.Command("chattr", "+i", oldest).CombinedOutput(); err != nil {
			return fmt.Errorf("chattr: %v %s", err, out)
		}
		immutable = oldest
		return nil
	})
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", immutable).Run() })

	// Every dashboard query returns series.
	dash := loadDashboard(t)
	eventually(t, 90*time.Second, "every dashboard query returns series", func() error {
		var empty []string
		for _, q := range dash {
			expr := strings.NewReplacer("$project", p.name, "$backup_job", ".*", "$job", ".+", "$instance", ".+").Replace(q)
			n, err := pr.query(expr)
			if err != nil {
				return fmt.Errorf("%s: %v", expr, err)
			}
			if n == 0 {
				empty = append(empty, expr)
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("no series for %q", empty)
		}
		return nil
	})
	// The dashboard's variables resolve: job and instance from any scrape job's sidecars.
	var scrapeJobs []string
	if err := pr.api("/api/v1/label/job/values", url.Values{"match[]": {"docker_backup_build_info"}}, &scrapeJobs); err != nil || len(scrapeJobs) != 1 {
		t.Errorf("variable job: %q, %v", scrapeJobs, err)
	}
	var projects []string
	if err := pr.api("/api/v1/label/project/values", url.Values{"match[]": {"docker_backup_last_run_timestamp_seconds"}}, &projects); err != nil || !contains(projects, p.name) {
		t.Errorf("variable project: %q, %v", projects, err)
	}

	// Every alert expression is evaluated by Prometheus; those the scenario provokes return
	// series (pending or firing), and the failure alert fires.
	provoked := map[string]bool{"BackupFailed": true, "BackupStale": true, "BackupSizeDropped": true, "BackupLabelErrors": true, "BackupPruneErrors": true}
	eventually(t, 90*time.Second, "alerts", func() error {
		rules, err := pr.rules()
		if err != nil {
			return err
		}
		for name, r := range rules {
			if r.Health != "ok" {
				return fmt.Errorf("rule %s: health %s", name, r.Health)
			}
			if provoked[name] && len(r.Alerts) == 0 {
				return fmt.Errorf("rule %s (%s) returns no series yet", name, r.Query)
			}
		}
		if want := shippedAlerts(t); len(rules) != want {
			return fmt.Errorf("%d alert rules loaded, want %d", len(rules), want)
		}
		failed := rules["BackupFailed"]
		if failed.State != "firing" || failed.Alerts[0].Labels["service"] != "flaky" {
			return fmt.Errorf("BackupFailed is %s: %+v", failed.State, failed.Alerts)
		}
		if a := rules["BackupSizeDropped"].Alerts; a[0].Labels["service"] != "shrink" {
			return fmt.Errorf("BackupSizeDropped for %v", a[0].Labels)
		}
		if a := rules["BackupSidecarNotScraped"].Alerts; len(a) != 0 {
			return fmt.Errorf("BackupSidecarNotScraped while scraped: %v", a)
		}
		return nil
	})

	// The next run time moves on with every run (it is never left in the past).
	if n, err := pr.query(`time() - docker_backup_next_run_timestamp_seconds{project="` + p.name + `", service="good"} > 10`); err != nil || n != 0 {
		t.Errorf("the next run of good is more than 10 s in the past (%d series, %v)", n, err)
	}

	// A removed service's series go away.
	docker(t, "rm", "-f", shrink)
	eventually(t, 30*time.Second, "the removed job's series are deleted", func() error {
		if strings.Contains(httpGet(t, metricsURL), `service="shrink"`) {
			return fmt.Errorf("still exported")
		}
		return nil
	})
	// The sidecar goes away: Prometheus sees it down.
	docker(t, "stop", sidecar)
	eventually(t, 30*time.Second, "BackupSidecarDown's expression", func() error {
		rules, err := pr.rules()
		if err != nil {
			return err
		}
		if len(rules["BackupSidecarDown"].Alerts) == 0 {
			return fmt.Errorf("no series")
		}
		return nil
	})
}

// shippedAlerts counts the alert rules of the shipped rules file.
func shippedAlerts(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "- alert:")
}

// loadDashboard returns every query of the shipped Grafana dashboard.
func loadDashboard(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, "deploy", "grafana", "docker-backup.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			out = append(out, q.Expr)
		}
	}
	return out
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, resp.Body)
	return b.String()
}

// TestComposeMetricsFile brings up the example with compose.metrics.yml's Prometheus (the
// image built from Debian's package, as no registry is reachable): the shipped scrape
// configuration reaches the sidecar and the shipped rules load.
func TestComposeMetricsFile(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	env := []string{"POSTGRES_IMAGE=" + postgresImage, "FILES_IMAGE=" + plainImage, "SIDECAR_IMAGE=" + sidecarImage(t),
		"PROMETHEUS_IMAGE=" + prometheusImage(t), "DB_SCHEDULE=@every 5s"}
	files := []string{"compose.example.yml", "compose.metrics.yml"}
	t.Cleanup(func() { composeDown(t, p.name, files, env) })
	composeFiles(t, p.name, files, env, "up", "-d", "db", "files", "backup", "prometheus")
	t.Cleanup(func() {
		if t.Failed() { // what the sidecar and Prometheus saw
			out, _, _ := dockerCmd(nil, "backup", "status", "-p", p.name)
			t.Logf("status:\n%s\nsidecar log:\n%s\nprometheus log:\n%s", out,
				composeFiles(t, p.name, files, env, "logs", "--tail", "40", "backup"), composeFiles(t, p.name, files, env, "logs", "--tail", "20", "prometheus"))
		}
	})
	pr := &prom{t: t, addr: "127.0.0.1:9091"}
	eventually(t, 3*time.Minute, "Prometheus scrapes the sidecar and runs the rules", func() error {
		if n, err := pr.query(`up{job="docker-backup"} == 1`); err != nil || n != 1 {
			return fmt.Errorf("sidecar up: %d series, %v", n, err)
		}
		if n, err := pr.query(`docker_backup_last_run_success{project="` + p.name + `", service="db"} == 1`); err != nil || n != 1 {
			return fmt.Errorf("db's last run: %d series, %v", n, err)
		}
		rules, err := pr.rules()
		if want := shippedAlerts(t); err != nil || len(rules) != want {
			return fmt.Errorf("%d rules (want %d), %v", len(rules), want, err)
		}
		for name, r := range rules {
			if r.Health != "ok" {
				return fmt.Errorf("rule %s: %s", name, r.Health)
			}
		}
		return nil
	})
}

// prometheusImage builds the Prometheus fixture image once.
var prometheusImage = fixtureImage("DOCKER_BACKUP_TEST_PROMETHEUS_IMAGE", "prometheus")
