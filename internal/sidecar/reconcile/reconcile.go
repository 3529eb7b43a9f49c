// Package reconcile keeps the sidecar's jobs in step with its services' labels: it reads the
// docker-backup.* labels of the managed services into jobs, reports the invalid ones as
// problems (the others keep running), and does it again on every burst of container events
// and periodically, resubscribing to the events stream when it breaks.
package reconcile

import (
	"context"
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
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/sidecar/jobs"
	"github.com/docker-backup/docker-backup/internal/strategies"
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
	Unscheduled     []string // enabled services without a schedule
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
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{opts: opts, log: log}
}

// State returns what the last reconcile found.
func (r *Reconciler) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.Problems = slices.Clone(st.Problems)
	st.Unscheduled = slices.Clone(st.Unscheduled)
	st.EventsConnected = r.events.Load()
	return st
}

// Reconcile reads the labels of the managed services and brings the jobs in step.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	r.once.Lock()
	defer r.once.Unlock()
	filters := make(client.Filters)
	if r.opts.AllProjects {
		filters = filters.Add("label", labels.Enable)
	} else {
		filters = filters.Add("label", containers.LabelProject+"="+r.opts.Project)
	}
	res, err := r.opts.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	// One container per service: the lowest-numbered replica.
	byService := map[string]container.Summary{}
	for _, s := range res.Items {
		if s.ID == r.opts.Self || labels.IsSidecar(s.Labels) || containers.IsOneOff(s) {
			continue
		}
		key := serviceKey(s)
		if cur, ok := byService[key]; !ok || containers.ReplicaNumber(s) < containers.ReplicaNumber(cur) {
			byService[key] = s
		}
	}

	want := map[string]*jobs.Job{}
	var problems, unscheduled []string
	keys := make([]string, 0, len(byService))
	for k := range byService {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		s := byService[key]
		name := firstName(s)
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
		project, service := s.Labels[containers.LabelProject], s.Labels[containers.LabelService]
		if service == "" {
			service = name
		}
		for _, lj := range parsed {
			if err := checkPaths(name, s, lj); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			for _, j := range jobs.Members(&jobs.Job{Job: lj, Project: project, Service: service, Container: name}) {
				j.Fingerprint = fingerprint(j)
				want[j.Key()] = j
			}
		}
		if len(parsed) == 0 && len(errs) == 0 {
			// Enabled for backups by hand only; status lists it, it is not an error.
			unscheduled = append(unscheduled, service)
		}
	}
	problems = append(problems, r.opts.Syncer.Sync(ctx, want)...)
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
	r.state.Problems, r.state.Unscheduled, r.state.LastSync = problems, unscheduled, time.Now()
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
	return fmt.Sprintf("%q", []any{j.Container, j.Strategy, j.Schedule, j.Retention.String(), j.Target, j.Targets, j.Leader, j.Paths, j.Database, j.Stop, j.Pre, j.Post, j.HookTimeout, j.Recipients, j.Verify, j.Notify, j.Ping, j.TargetRetention})
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

func cloneWith(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}
