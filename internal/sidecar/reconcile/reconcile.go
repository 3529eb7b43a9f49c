// Package reconcile keeps the sidecar's jobs in step with its services' labels: it reads the
// docker-backup.* labels of the managed services into jobs, reports the invalid ones as
// problems (the others keep running), and does it again on every burst of container events
// and periodically, resubscribing to the events stream when it breaks.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/control"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/sidecar/jobs"
	"github.com/docker-backup/docker-backup/internal/strategies"
	"github.com/docker-backup/docker-backup/internal/swarm"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// API is the part of the Engine API the reconciler uses.
type API interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}

// Syncer receives the jobs the labels define.
type Syncer interface {
	Sync(ctx context.Context, want map[string]*jobs.Job) []string
}

// Options are what a Reconciler reads labels for.
type Options struct {
	API API
	// Project is the compose project managed; AllProjects: every project's enabled services.
	Project     string
	AllProjects bool
	// Self is the sidecar's own container ID, never managed.
	Self string
	// Node is the Swarm node the sidecar's Engine is (Active false outside Swarm); SwarmAPI
	// reaches a manager (nil: none reachable, a worker node without one configured).
	Node     swarm.Node
	SwarmAPI swarm.API
	// Targets are the names of the sidecar's targets.
	Targets []string
	// NotifySets are the names of the sidecar's notification URL sets.
	NotifySets       []string
	DefaultRetention retention.Policy
	// DefaultSchedule applies to enabled services without a schedule label; empty: none.
	DefaultSchedule string
	// Resync is the period of the full reconcile behind the events stream.
	Resync time.Duration
	// OnResync runs after each periodic reconcile (the runner lists its targets).
	OnResync func(context.Context)
	Syncer   Syncer
	// OnProblem is told each problem (an invalid label) when it first appears.
	OnProblem func(problem string)
	Log       *slog.Logger
}

// State is what the last reconcile found, for status.
type State struct {
	Problems        []string
	Unscheduled     []string              // enabled services without a schedule
	Elsewhere       []control.ServiceNode // Swarm services another node's sidecar backs up
	LastSync        time.Time
	EventsConnected bool
}

// Reconciler keeps jobs in step with labels.
type Reconciler struct {
	opts   Options
	log    *slog.Logger
	once   sync.Mutex // one reconcile at a time
	mu     sync.Mutex // guards state
	state  State
	events atomic.Bool
	// lastHere remembers, per Swarm service, whether this node backed it up at the last
	// reconcile, for while the service has no running task.
	lastHere map[string]bool
	// verified are the containers found to be their Swarm task's (a container's labels never
	// change): a task's container stays its task's after the swarm forgets the task (a
	// service scaled to 0 for a stop: true backup removes it).
	verified map[string]bool
	// lastJobs are the jobs of the last reconcile for Swarm services, by service ID.
	lastJobs map[string][]*jobs.Job
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{opts: opts, log: log, lastHere: map[string]bool{}, verified: map[string]bool{}}
}

// State returns what the last reconcile found.
func (r *Reconciler) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.Problems = slices.Clone(st.Problems)
	st.Unscheduled = slices.Clone(st.Unscheduled)
	st.Elsewhere = slices.Clone(st.Elsewhere)
	st.EventsConnected = r.events.Load()
	return st
}

// Reconcile reads the labels of the managed services and brings the jobs in step.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	r.once.Lock()
	defer r.once.Unlock()
	items, err := r.list(ctx)
	if err != nil {
		return err
	}
	var view *swarm.View
	if r.opts.Node.Active {
		view = swarm.NewView(r.opts.SwarmAPI, r.opts.Node)
	}
	members, problems := r.members(ctx, view, items)
	var unscheduled []string
	byService := containers.FirstOfEach(members)
	for id := range r.verified {
		if !slices.ContainsFunc(items, func(s container.Summary) bool { return s.ID == id }) {
			delete(r.verified, id)
		}
	}

	want := map[string]*jobs.Job{}
	swarmJobs := map[string][]*jobs.Job{} // by Swarm service ID
	var elsewhere []control.ServiceNode
	keys := make([]string, 0, len(byService))
	for k := range byService {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		s := byService[key]
		name := firstName(s.Summary)
		enabled, err := labels.Enabled(name, s.Labels)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if !enabled {
			if labels.HasJobLabels(s.Labels) {
				problems = append(problems, fmt.Sprintf("container %s: has docker-backup.* labels but not docker-backup.enable=true; it is not backed up", name))
			}
			continue
		}
		lbls := s.Labels
		if r.opts.DefaultSchedule != "" {
			if _, ok := lbls[labels.Schedule]; !ok {
				lbls = cloneWith(lbls, labels.Schedule, r.opts.DefaultSchedule)
			}
		}
		parsed, errs := labels.Parse(name, lbls, labels.Options{Strategies: strategies.Names(), Targets: r.opts.Targets,
			NotifySets: r.opts.NotifySets, DefaultRetention: r.opts.DefaultRetention})
		for _, e := range errs {
			problems = append(problems, e.Error())
		}
		project, service := s.Project, s.Service
		node := ""
		if s.Task != nil {
			node = r.opts.Node.Name // a Swarm task: the job runs on this node
		}
		if len(parsed) > 0 {
			here, err := r.backedUpHere(ctx, view, s)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: %v", project, service, err))
				continue
			}
			if !here {
				continue
			}
		}
		for _, lj := range parsed {
			if err := checkJob(name, s, lj); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			for _, j := range jobs.Members(&jobs.Job{Job: lj, Project: project, Service: service, Container: name, Node: node}) {
				j.Fingerprint = fingerprint(j)
				want[j.Key()] = j
				if s.Task != nil {
					swarmJobs[s.Task.ServiceID] = append(swarmJobs[s.Task.ServiceID], j)
				}
			}
		}
		if len(parsed) == 0 && len(errs) == 0 {
			// Enabled for backups by hand only; status lists it, it is not an error.
			unscheduled = append(unscheduled, service)
		}
	}
	if view != nil && !r.opts.AllProjects {
		for _, p := range view.Elsewhere(ctx, r.opts.Project) {
			elsewhere = append(elsewhere, control.ServiceNode{Service: r.opts.Project + "/" + p.Service, Node: p.Node})
		}
	}
	r.keepScaledToZero(ctx, view, items, want, swarmJobs)
	problems = append(problems, r.opts.Syncer.Sync(ctx, want)...)
	r.setState(problems, unscheduled, elsewhere)
	return nil
}

// setState records what a reconcile found, and tells each problem when it first appears.
func (r *Reconciler) setState(problems, unscheduled []string, elsewhere []control.ServiceNode) {
	sort.Strings(problems)
	sort.Strings(unscheduled)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(problems, r.state.Problems) {
		for _, p := range problems {
			r.log.Error("invalid backup configuration", "problem", p)
			if r.opts.OnProblem != nil && !slices.Contains(r.state.Problems, p) {
				r.opts.OnProblem(p)
			}
		}
	}
	r.state.Problems, r.state.Unscheduled, r.state.Elsewhere, r.state.LastSync = problems, unscheduled, elsewhere, time.Now()
}

// members are the containers that may be managed, with where they belong; a Swarm task's
// labels are its service's over its container's, and its container must be the task's.
func (r *Reconciler) members(ctx context.Context, view *swarm.View, items []container.Summary) ([]containers.Member, []string) {
	var problems []string
	// One container per service: the lowest-numbered replica (a Swarm task's slot).
	var members []containers.Member
	for _, s := range items {
		if s.ID == r.opts.Self || labels.IsSidecar(s.Labels) || containers.IsOneOff(s) {
			continue
		}
		m := containers.Member{Summary: s, Membership: containers.MembershipOf(s.Labels, r.opts.Node.Name)}
		if !r.opts.AllProjects && m.Project != r.opts.Project {
			continue // a stack's label without being the stack's task
		}
		if m.Task != nil && view == nil {
			continue // a task's labels on an Engine in no swarm: not a task
		}
		if m.Task != nil {
			if !r.genuine(ctx, view, m, &problems) {
				continue
			}
			lbls, problem := r.taskLabels(ctx, view, m)
			if problem != "" {
				problems = append(problems, problem)
			}
			if lbls == nil {
				continue
			}
			m.Labels = lbls
		}
		if m.Service == "" {
			m.Project, m.Service = "", firstName(s)
		}
		members = append(members, m)
	}
	return members, problems
}

// backedUpHere reports whether this node backs up the member: outside Swarm, and for a global
// service's task, always; a replicated service's when its lowest-slot running task is here
// (while it has none, as at the last reconcile).
func (r *Reconciler) backedUpHere(ctx context.Context, view *swarm.View, s containers.Member) (bool, error) {
	if view == nil || s.Task == nil || s.Task.Global() {
		return true, nil
	}
	here, by, err := view.BackedUpHere(ctx, s.Task)
	if errors.Is(err, swarm.ErrNoRunningTask) {
		// Scaled to 0 for a while (by a stop: true backup, perhaps): as before.
		here, err = r.lastHere[s.Task.ServiceID], nil
	}
	r.lastHere[s.Task.ServiceID] = here
	if err == nil && !here {
		r.log.Debug("swarm service backed up by another node", "service", s.Project+"/"+s.Service, "node", by)
	}
	return here, err
}

// checkJob refuses what a job's labels ask that its container cannot give.
func checkJob(name string, s containers.Member, lj labels.Job) error {
	if lj.Stop && s.Task != nil && s.Task.Global() {
		label := labels.Prefix + "stop"
		if lj.Name != labels.DefaultJob {
			label = labels.Prefix + lj.Name + ".stop"
		}
		return &labels.Error{Container: name, Label: label, Value: "true",
			Reason: "the service is a global swarm service: scaling it to 0 would stop it on every node; back it up running, or make it replicated"}
	}
	return checkPaths(name, s.Summary, lj)
}

// keepScaledToZero keeps the jobs of a Swarm service this node backed up whose containers are
// gone while it has no running task: scaled to 0 (by a stop: true backup — newer Engines remove
// the containers of the tasks a scale-down ends, and the job's run must not be cancelled — or
// by hand), it keeps its job where it was. A service removed, or running again with no task
// here, loses them.
func (r *Reconciler) keepScaledToZero(ctx context.Context, view *swarm.View, items []container.Summary, want map[string]*jobs.Job, swarmJobs map[string][]*jobs.Job) {
	for id, js := range r.lastJobs {
		if _, seen := swarmJobs[id]; seen || view == nil || slices.ContainsFunc(items, func(s container.Summary) bool {
			return s.Labels[containers.LabelSwarmServiceID] == id && r.verified[s.ID]
		}) {
			continue
		}
		if _, err := view.Service(ctx, &containers.Task{ServiceID: id, ServiceName: js[0].Project + "_" + js[0].Service}); err != nil {
			continue
		}
		if _, err := view.LowestTask(ctx, id); !errors.Is(err, swarm.ErrNoRunningTask) {
			continue
		}
		for _, j := range js {
			if _, taken := want[j.Key()]; !taken {
				want[j.Key()] = j
			}
		}
		swarmJobs[id] = js
	}
	r.lastJobs = swarmJobs
}

// genuine reports whether m's container is the Swarm task its labels claim, as a manager
// says; a running one that is not is a problem (someone ran a container with a task's
// labels), a stopped one is left out quietly (a task the swarm has removed since).
func (r *Reconciler) genuine(ctx context.Context, view *swarm.View, m containers.Member, problems *[]string) bool {
	if r.verified[m.ID] {
		return true
	}
	checked, err := view.Genuine(ctx, m.Task, m.ID)
	switch {
	case err != nil && m.State == container.StateRunning:
		*problems = append(*problems, fmt.Sprintf("%s/%s: %v", m.Project, m.Service, err))
		return false
	case err != nil:
		return false
	case checked:
		r.verified[m.ID] = true
	}
	return true
}

// checkPaths refuses volume paths outside the container's mounts: they would back up the
// container's throw-away layer, or escape the volume the user meant.
func checkPaths(name string, s container.Summary, j labels.Job) error {
	if len(j.Paths) == 0 {
		return nil
	}
	var mounts []string
	for _, m := range s.Mounts {
		mounts = append(mounts, path.Clean(m.Destination))
	}
	for _, p := range j.Paths {
		if _, inside := mountpath.Holder(p, mounts); !inside {
			label := labels.Paths
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

func fingerprint(j *jobs.Job) string {
	container := j.Container
	if j.Node != "" {
		// A Swarm task's container changes with each task (a scale back after a stop: true
		// backup): the job is the same.
		container = ""
	}
	return fmt.Sprintf("%q", []any{container, j.Strategy, j.Schedule, j.Retention.String(), j.Target, j.Targets, j.Leader, j.Paths, j.Database, j.Stop, j.Pre, j.Post, j.HookTimeout, j.Recipients, j.Verify, j.Notify, j.Ping, j.TargetRetention})
}

// list lists the containers that may be managed: the project's (compose project or Swarm
// stack), or every container enabled for backups and every stack's.
func (r *Reconciler) list(ctx context.Context) ([]container.Summary, error) {
	filters := []string{containers.LabelProject + "=" + r.opts.Project, containers.LabelStack + "=" + r.opts.Project}
	if r.opts.AllProjects {
		filters = []string{labels.Enable, containers.LabelStack}
	}
	seen := map[string]bool{}
	var out []container.Summary
	for _, f := range filters {
		res, err := r.opts.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", f)})
		if err != nil {
			return nil, fmt.Errorf("listing containers: %w", err)
		}
		for _, s := range res.Items {
			if !seen[s.ID] {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// taskLabels are a Swarm task's labels, its service's (deploy.labels) over its container's;
// nil, with a problem, when they cannot be read. A worker node without a manager to ask
// reads its containers' labels alone, and says so once it finds them.
func (r *Reconciler) taskLabels(ctx context.Context, view *swarm.View, m containers.Member) (map[string]string, string) {
	lbls, err := view.Labels(ctx, m.Task, m.Labels)
	if err == nil {
		return lbls, ""
	}
	if errors.Is(err, swarm.ErrNoManager) {
		if m.Task.Global() {
			return m.Labels, ""
		}
		if labels.HasJobLabels(m.Labels) || m.Labels[labels.Enable] != "" {
			return nil, fmt.Sprintf("%s/%s: %v; it is not backed up from this node", m.Project, m.Service, err)
		}
		return nil, ""
	}
	return nil, fmt.Sprintf("%s/%s: %v", m.Project, m.Service, err)
}

func firstName(s container.Summary) string {
	if len(s.Names) > 0 {
		return strings.TrimPrefix(s.Names[0], "/")
	}
	return s.ID[:12]
}

func cloneWith(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}
