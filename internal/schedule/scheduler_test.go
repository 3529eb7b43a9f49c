package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newStarted(t *testing.T, opts SchedulerOptions) *Scheduler {
	s := NewScheduler(opts)
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s
}

func TestPanicIsRecovered(t *testing.T) {
	s := newStarted(t, SchedulerOptions{})
	var runs atomic.Int32
	if err := s.Set("boom", "@daily", func(ctx context.Context) error {
		runs.Add(1)
		panic("job exploded")
	}); err != nil {
		t.Fatal(err)
	}
	s.Trigger("boom")
	waitFor(t, "first run", func() bool { return runs.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	s.Trigger("boom")
	waitFor(t, "second run after a panic", func() bool { return runs.Load() == 2 })
}

func TestAJobNeverOverlapsItself(t *testing.T) {
	s := newStarted(t, SchedulerOptions{MaxConcurrent: 4})
	release := make(chan struct{})
	var runs, running, most atomic.Int32
	s.Set("slow", "@daily", func(ctx context.Context) error {
		runs.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		return nil
	})
	s.Trigger("slow")
	waitFor(t, "the first run", func() bool { return running.Load() == 1 })
	s.Trigger("slow") // skipped: still running
	s.Trigger("slow")
	time.Sleep(100 * time.Millisecond)
	close(release)
	waitFor(t, "the run to end", func() bool { return running.Load() == 0 })
	if runs.Load() != 1 || most.Load() != 1 {
		t.Errorf("runs %d, most at once %d; want 1 and 1", runs.Load(), most.Load())
	}
}

func TestGlobalConcurrencyLimit(t *testing.T) {
	s := newStarted(t, SchedulerOptions{MaxConcurrent: 2})
	release := make(chan struct{})
	var running, most, done atomic.Int32
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		s.Set(name, "@daily", func(ctx context.Context) error {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			running.Add(-1)
			done.Add(1)
			return nil
		})
		s.Trigger(name)
	}
	waitFor(t, "two jobs running", func() bool { return running.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	if running.Load() != 2 {
		t.Errorf("%d jobs running, want the limit of 2", running.Load())
	}
	close(release)
	waitFor(t, "all five done", func() bool { return done.Load() == 5 })
	if most.Load() != 2 {
		t.Errorf("at most %d at once, want 2", most.Load())
	}
}

func TestTimeoutCancelsTheRun(t *testing.T) {
	s := newStarted(t, SchedulerOptions{Timeout: 100 * time.Millisecond})
	var got atomic.Value
	s.Set("stuck", "@daily", func(ctx context.Context) error {
		<-ctx.Done()
		got.Store(ctx.Err())
		return ctx.Err()
	})
	s.Trigger("stuck")
	waitFor(t, "the timeout", func() bool { return got.Load() != nil })
	if err, _ := got.Load().(error); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context ended with %v, want a deadline", err)
	}
}

func TestSetReplaceRemoveNext(t *testing.T) {
	loc := time.UTC
	s := newStarted(t, SchedulerOptions{Location: loc})
	noop := func(context.Context) error { return nil }
	if err := s.Set("db", "0 2 * * *", noop); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("bad", "0 25 * * *", noop); err == nil {
		t.Error("an invalid schedule was accepted")
	}
	next := s.Next("db")
	if next.Hour() != 2 || next.Minute() != 0 || !next.After(time.Now()) {
		t.Errorf("next run %v", next)
	}
	if err := s.Set("db", "30 4 * * *", noop); err != nil {
		t.Fatal(err)
	}
	if n := s.Next("db"); n.Hour() != 4 || n.Minute() != 30 {
		t.Errorf("after replacing the schedule, next run %v", n)
	}
	s.Set("files", "@hourly", noop)
	if got := s.Names(); len(got) != 2 || got[0] != "db" || got[1] != "files" {
		t.Errorf("names %v", got)
	}
	if !s.Remove("db") || s.Remove("db") {
		t.Error("Remove")
	}
	if err := s.Trigger("db"); err == nil {
		t.Error("triggering a removed job succeeded")
	}
}

func TestStopWaitsForRunningJobs(t *testing.T) {
	s := NewScheduler(SchedulerOptions{})
	s.Start()
	var finished atomic.Bool
	var once sync.Once
	started := make(chan struct{})
	s.Set("long", "@daily", func(ctx context.Context) error {
		once.Do(func() { close(started) })
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		finished.Store(true)
		return nil
	})
	s.Trigger("long")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Stop returned before the running job ended")
	}
}
