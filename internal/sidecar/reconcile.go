package sidecar

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/catalog"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// job is one scheduled backup job as the labels define it now.
type job struct {
	labels.Job
	Project, Service string
	Container        string // the container the labels were read from
	ID               int64  // in the catalog
	fingerprint      string
	running          chan struct{} // holds a token while the job runs
	adhoc            bool          // a one-off backup of a service without jobs, asked for by the plugin
}

// manifestJob is the job name recorded in the manifest; a one-off backup has none, so no
// job's retention ever prunes it.
func (j *job) manifestJob() string {
	if j.adhoc {
		return ""
	}
	return j.Name
}

// Key names the job: project/service/job.
func (j *job) Key() string { return j.Project + "/" + j.Service + "/" + j.Name }

func (j *job) target() string {
	if j.Target == "" {
		return "default"
	}
	return j.Target
}

// Info is the bounded description of a job used for metrics labels.
func (j *job) Info() JobInfo {
	return JobInfo{Project: j.Project, Service: j.Service, Job: j.Name, Strategy: j.Strategy, Target: j.target()}
}

// Reconcile reads the labels of the managed services and brings the schedule in step:
// new jobs are added, changed ones replaced, removed ones dropped. Invalid labels become
// problems (shown by status and metrics) and leave the other jobs alone.
func (d *Daemon) Reconcile(ctx context.Context) error {
	d.reconcileMu.Lock()
	defer d.reconcileMu.Unlock()
	filters := make(client.Filters)
	if d.cfg.AllProjects {
		filters = filters.Add("label", labels.Prefix+"enable")
	} else {
		filters = filters.Add("label", containers.LabelProject+"="+d.cfg.Project)
	}
	res, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	// One container per service: the lowest-numbered replica.
	byService := map[string]container.Summary{}
	for _, s := range res.Items {
		if s.ID == d.self || s.Labels[labels.Prefix+"sidecar"] == "true" || s.Labels[containers.LabelOneOff] == "True" {
			continue
		}
		key := serviceKey(s)
		if cur, ok := byService[key]; !ok || number(s) < number(cur) {
			byService[key] = s
		}
	}

	want := map[string]*job{}
	var problems, unscheduled []string
	for _, key := range sortedKeys(byService) {
		s := byService[key]
		name := strings.TrimPrefix(firstName(s), "/")
		enabled, err := labels.Enabled(name, s.Labels)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if !enabled {
			if hasJobLabels(s.Labels) {
				problems = append(problems, fmt.Sprintf("container %s: has docker-backup.* labels but not docker-backup.enable=true; it is not backed up", name))
			}
			continue
		}
		lbls := s.Labels
		if d.cfg.DefaultSchedule != "" {
			if _, ok := lbls[labels.Prefix+"schedule"]; !ok {
				lbls = maps(lbls)
				lbls[labels.Prefix+"schedule"] = d.cfg.DefaultSchedule
			}
		}
		parsed, errs := labels.Parse(name, lbls, labels.Options{Strategies: strategy.Names(), Targets: d.cfg.TargetNames(), DefaultRetention: d.cfg.DefaultRetention})
		for _, e := range errs {
			problems = append(problems, e.Error())
		}
		project, service := s.Labels[containers.LabelProject], s.Labels[containers.LabelService]
		if service == "" {
			service = name
		}
		for _, lj := range parsed {
			if err := checkPaths(name, s, lj); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			j := &job{Job: lj, Project: project, Service: service, Container: name}
			j.fingerprint = fingerprint(j)
			want[j.Key()] = j
		}
		if len(parsed) == 0 && len(errs) == 0 {
			// Enabled for backups by hand only; status lists it, it is not an error.
			unscheduled = append(unscheduled, service)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	for key, old := range d.jobs {
		if _, ok := want[key]; !ok {
			d.sched.Remove(key)
			delete(d.jobs, key)
			d.log.Info("job removed", "job", key)
			d.obs.JobRemoved(old.Info())
		}
	}
	for key, j := range want {
		old, ok := d.jobs[key]
		if ok && old.fingerprint == j.fingerprint {
			continue
		}
		id, err := d.cat.UpsertJob(ctx, catalog.Job{Project: j.Project, Service: j.Service, Name: j.Name, Strategy: j.Strategy, Schedule: j.Schedule, Target: j.target()})
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		j.ID = id
		if ok {
			j.running = old.running
		} else {
			j.running = make(chan struct{}, 1)
		}
		if err := d.sched.Set(key, j.Schedule, func(ctx context.Context) error {
			_, err := d.RunJob(ctx, key, nil)
			return err
		}); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if ok {
			d.log.Info("job changed", "job", key, "schedule", j.Schedule, "strategy", j.Strategy, "target", j.target())
			if old.Info() != j.Info() {
				d.obs.JobRemoved(old.Info())
			}
		} else {
			d.log.Info("job added", "job", key, "schedule", j.Schedule, "strategy", j.Strategy, "target", j.target())
		}
		if !ok || old.Info() != j.Info() {
			d.history(ctx, j)
		}
		d.jobs[key] = j
	}
	sort.Strings(problems)
	if !slices.Equal(problems, d.problems) {
		for _, p := range problems {
			d.log.Error("invalid backup configuration", "problem", p)
		}
	}
	d.problems = problems
	sort.Strings(unscheduled)
	d.unscheduled = unscheduled
	d.lastSync = time.Now()
	infos := make([]JobInfo, 0, len(d.jobs))
	for _, j := range d.jobs {
		infos = append(infos, j.Info())
		d.obs.JobScheduled(j.Info(), d.sched.Next(j.Key()), j.Schedule)
	}
	d.obs.Configured(infos, len(problems))
	return nil
}

// checkPaths refuses volume paths outside the container's mounts: they would back up the
// container's throw-away layer, or escape the volume the user meant.
func checkPaths(name string, s container.Summary, j labels.Job) error {
	if len(j.Paths) == 0 {
		return nil
	}
	var mounts []string
	for _, m := range s.Mounts {
		mounts = append(mounts, m.Destination)
	}
	for _, p := range j.Paths {
		inside := false
		for _, m := range mounts {
			if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
				inside = true
			}
		}
		if !inside {
			label := labels.Prefix + "paths"
			if j.Name != labels.DefaultJob {
				label = labels.Prefix + j.Name + ".paths"
			}
			have := "none"
			if len(mounts) > 0 {
				sort.Strings(mounts)
				have = strings.Join(mounts, ", ")
			}
			return &labels.Error{Container: name, Label: label, Value: strings.Join(j.Paths, ","),
				Reason: fmt.Sprintf("path %s is not inside any of the container's volumes or bind mounts (%s)", path.Clean(p), have)}
		}
	}
	return nil
}

func fingerprint(j *job) string {
	return fmt.Sprintf("%q", []any{j.Container, j.Strategy, j.Schedule, j.Retention.String(), j.Target, j.Paths, j.Database, j.Stop, j.Pre, j.Post})
}

func hasJobLabels(l map[string]string) bool {
	for k := range l {
		if strings.HasPrefix(k, labels.Prefix) && k != labels.Prefix+"sidecar" {
			return true
		}
	}
	return false
}

func serviceKey(s container.Summary) string {
	if svc := s.Labels[containers.LabelService]; svc != "" {
		return s.Labels[containers.LabelProject] + "/" + svc
	}
	return "/" + firstName(s)
}

func firstName(s container.Summary) string {
	if len(s.Names) > 0 {
		return strings.TrimPrefix(s.Names[0], "/")
	}
	return s.ID[:12]
}

func number(s container.Summary) int {
	n, err := strconv.Atoi(s.Labels[containers.LabelContainerNumber])
	if err != nil {
		return 1 << 30
	}
	return n
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// history hands the job's last runs from the catalog to the observer.
func (d *Daemon) history(ctx context.Context, j *job) {
	runs, err := d.cat.Runs(ctx, j.ID, 100)
	if err != nil || len(runs) == 0 {
		return
	}
	outcome := func(r catalog.Run) *RunOutcome {
		return &RunOutcome{Success: r.Status == catalog.Success, Started: r.StartedAt, Duration: r.FinishedAt.Sub(r.StartedAt), Size: r.Size}
	}
	var last, success *RunOutcome
	for _, r := range runs {
		if r.Status == catalog.Running {
			continue
		}
		if last == nil {
			last = outcome(r)
		}
		if r.Status == catalog.Success {
			success = outcome(r)
			break
		}
	}
	d.obs.History(j.Info(), last, success)
}
