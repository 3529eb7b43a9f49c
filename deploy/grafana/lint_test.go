// Package grafana holds the shipped dashboard; its test applies the rules of Grafana's
// dashboard linter (github.com/grafana/dashboard-linter, the one the monitoring mixins use),
// which is not installable here. The real-Prometheus e2e test evaluates every query.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	Title      string `json:"title"`
	Editable   bool   `json:"editable"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
			AllValue   string          `json:"allValue"`
			Refresh    int             `json:"refresh"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID          int         `json:"id"`
		Type        string      `json:"type"`
		Title       string      `json:"title"`
		Description string      `json:"description"`
		Datasource  *datasource `json:"datasource"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []struct {
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// units are some of Grafana's unit IDs: those a backup dashboard may use.
var units = []string{"none", "short", "percent", "percentunit", "bytes", "decbytes", "s", "ms", "m", "h", "d",
	"dtdurations", "dateTimeAsIso", "dateTimeFromNow", "bool", "bool_yes_no", "string", "Bps", "binBps", "ops"}

var (
	selector  = regexp.MustCompile(`\b(docker_backup_[a-z_]+|up)\b(\{[^}]*\})?`)
	rangeCall = regexp.MustCompile(`\b(rate|irate|increase)\((docker_backup_[a-z_]+)(\{[^}]*\})?\[([^\]]+)\]`)
	counter   = regexp.MustCompile(`\b(docker_backup_[a-z_]+_total)\b`)
)

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("docker-backup.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDashboardLint(t *testing.T) {
	d := load(t)
	if d.Editable {
		t.Error("uneditable-dashboard: a shipped dashboard is not editable")
	}
	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	if i, ok := vars["datasource"]; !ok || d.Templating.List[i].Type != "datasource" || !strings.Contains(string(d.Templating.List[i].Query), "prometheus") {
		t.Error("template-datasource-rule: no templated Prometheus datasource named datasource")
	}
	for _, name := range []string{"job", "instance"} {
		i, ok := vars[name]
		if !ok {
			t.Errorf("template-%s-rule: no %s variable", name, name)
			continue
		}
		v := d.Templating.List[i]
		if v.Datasource == nil || (v.Datasource.UID != "$datasource" && v.Datasource.UID != "${datasource}") || v.Type != "query" ||
			v.Label != strings.ToUpper(name[:1])+name[1:] || !v.Multi || v.AllValue != ".+" {
			t.Errorf("template-%s-rule: %s must be a multi-select query on $datasource labelled %q with allValue .+: %+v", name, name, strings.ToUpper(name[:1])+name[1:], v)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.Refresh != 2 {
			t.Errorf("template-on-time-change-reload-rule: variable %s refreshes %d, want 2 (on time range change)", v.Name, v.Refresh)
		}
		if v.Type == "query" && v.Name != "job" && !strings.Contains(string(v.Query), `job=~\"$job\"`) {
			t.Errorf("variable %s is not scoped by $job: %s", v.Name, v.Query)
		}
	}
	for _, p := range d.Panels {
		name := p.Title
		if p.Title == "" || p.Description == "" {
			t.Errorf("panel-title-description-rule: panel %d has no title or description", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel-datasource-rule: panel %q does not use ${datasource}", name)
		}
		switch p.Type {
		case "stat", "table", "timeseries", "gauge":
			if !slices.Contains(units, p.FieldConfig.Defaults.Unit) {
				t.Errorf("panel-units-rule: panel %q has no or an invalid unit %q", name, p.FieldConfig.Defaults.Unit)
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel-no-targets-rule: panel %q has no query", name)
		}
		for _, q := range p.Targets {
			for _, m := range selector.FindAllStringSubmatch(q.Expr, -1) {
				if !strings.Contains(m[2], `job=~"$job"`) || !strings.Contains(m[2], `instance=~"$instance"`) {
					t.Errorf(`target-job-rule, target-instance-rule: panel %q: %s lacks job=~"$job" and instance=~"$instance"`, name, m[0])
				}
			}
			for _, m := range rangeCall.FindAllStringSubmatch(q.Expr, -1) {
				if (m[1] == "rate" || m[1] == "irate") && m[4] != "$__rate_interval" {
					t.Errorf("target-rate-interval-rule: panel %q: %s over [%s], want [$__rate_interval]", name, m[1], m[4])
				}
			}
			// Counters only through rate, irate or increase.
			counted := len(rangeCall.FindAllString(q.Expr, -1))
			if n := len(counter.FindAllString(q.Expr, -1)); n > counted {
				t.Errorf("target-counter-agg-rule: panel %q: a counter not under rate/increase: %s", name, q.Expr)
			}
		}
	}
}
