package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/netresearch/go-cron"
)

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	MaxConcurrent int            // jobs running at once; 0 means 1
	Timeout       time.Duration  // per run; 0 means none
	Jitter        time.Duration  // a random delay up to this before each scheduled run
	Location      *time.Location // for schedules without CRON_TZ; nil means local time
	Log           *slog.Logger
}

// Func is a job's work. Its context ends at the timeout or when the scheduler stops.
type Func func(ctx context.Context) error

// Scheduler runs named jobs on cron schedules with netresearch/go-cron, adding what its
// defaults lack: a panic in a job is recovered, a job never overlaps itself, a global limit
// bounds how many jobs run at once, each run has a timeout, and runs can be spread with
// random jitter.
type Scheduler struct {
	cron  *cron.Cron
	opts  SchedulerOptions
	slots chan struct{}
	log   *slog.Logger
}

// NewScheduler returns a stopped scheduler.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	// go-cron logs every wake-up at info; only its warnings and errors (a recovered panic,
	// a skipped overlapping run) are worth the sidecar's log.
	cl := cron.NewSlogLogger(slog.New(minLevel{log.Handler(), slog.LevelWarn}))
	return &Scheduler{
		// go-cron's default chain is empty: a panic would end the process.
		cron:  cron.New(cron.WithLocation(loc), cron.WithLogger(cl), cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl))),
		opts:  opts,
		slots: make(chan struct{}, max(opts.MaxConcurrent, 1)),
		log:   log,
	}
}

// Set adds the job, or replaces its schedule and work if one of that name exists.
func (s *Scheduler) Set(name, spec string, fn Func) error {
	job := cron.FuncJobWithContext(func(ctx context.Context) { s.run(ctx, name, fn, s.opts.Jitter) })
	if _, err := s.cron.UpsertJob(spec, job, cron.WithName(name)); err != nil {
		return fmt.Errorf("scheduling %s with %q: %w", name, spec, err)
	}
	return nil
}

func (s *Scheduler) run(ctx context.Context, name string, fn Func, jitter time.Duration) {
	if jitter > 0 {
		select {
		case <-time.After(rand.N(jitter)):
		case <-ctx.Done():
			return
		}
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.slots }()
	if s.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
	}
	start := time.Now()
	if err := fn(ctx); err != nil {
		s.log.Error("job failed", "job", name, "duration", time.Since(start).Round(time.Millisecond).String(), "error", err)
		return
	}
	s.log.Info("job done", "job", name, "duration", time.Since(start).Round(time.Millisecond).String())
}

// Remove deletes a job; a run in progress has its context cancelled.
func (s *Scheduler) Remove(name string) bool { return s.cron.RemoveByName(name) }

// Trigger runs a job now, outside its schedule (still never overlapping itself).
func (s *Scheduler) Trigger(name string) error {
	if err := s.cron.TriggerEntryByName(name); err != nil {
		return fmt.Errorf("running %s now: %w", name, err)
	}
	return nil
}

// Next returns a job's next scheduled run, or the zero time for an unknown job or a stopped
// scheduler.
func (s *Scheduler) Next(name string) time.Time { return s.cron.EntryByName(name).Next }

// Names lists the jobs, sorted.
func (s *Scheduler) Names() []string {
	var names []string
	for _, e := range s.cron.Entries() {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

// Start begins running jobs on their schedules.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling, cancels running jobs' contexts and waits for them to return, or
// for ctx. A stopped scheduler is not started again: make a new one.
func (s *Scheduler) Stop(ctx context.Context) error {
	done := s.cron.Stop()
	select {
	case <-done.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs still running after stop: %w", ctx.Err())
	}
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.min}
}

func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.Handler.WithGroup(g), m.min} }
