package reconcile

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/moby/moby/client"
)

// debounce coalesces a burst of events (compose recreating a project) into one reconcile.
const debounce = time.Second

// Watch follows container events and reconciles after each burst, and every Resync as a
// safety net; when the stream breaks (an error, a daemon restart) it resubscribes from where
// it stopped, backing off up to 30 s. It returns when ctx ends.
func (r *Reconciler) Watch(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go r.follow(ctx, kick)
	resync := time.NewTicker(r.opts.Resync)
	defer resync.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if pending == nil {
				pending = time.After(debounce)
			}
		case <-pending:
			pending = nil
			r.reconcileLogged(ctx, "event")
		case <-resync.C:
			r.reconcileLogged(ctx, "resync")
			if r.opts.OnResync != nil {
				r.opts.OnResync(ctx)
			}
		}
	}
}

func (r *Reconciler) reconcileLogged(ctx context.Context, why string) {
	if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
		r.log.Error("reconcile failed", "trigger", why, "error", err)
	}
}

func (r *Reconciler) follow(ctx context.Context, kick chan<- struct{}) {
	since := time.Now()
	backoff := time.Second
	for ctx.Err() == nil {
		filters := make(client.Filters).Add("type", "container")
		for _, e := range []string{"create", "start", "stop", "die", "destroy", "update", "rename"} {
			filters = filters.Add("event", e)
		}
		switch {
		case r.opts.Node.Active:
			// A stack's containers carry other labels than a compose project's: all of them.
		case r.opts.AllProjects:
			filters = filters.Add("label", labels.Enable)
		default:
			filters = filters.Add("label", containers.LabelProject+"="+r.opts.Project)
		}
		subCtx, cancel := context.WithCancel(ctx)
		stream := r.opts.API.Events(subCtx, client.EventsListOptions{Filters: filters, Since: strconv.FormatInt(since.Unix(), 10)})
		r.events.Store(true)
		// Events missed while disconnected are replayed from since; reconcile anyway in case.
		select {
		case kick <- struct{}{}:
		default:
		}
		err := func() error {
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case m, ok := <-stream.Messages:
					if !ok {
						return io.EOF
					}
					since = time.Unix(m.Time, 0)
					backoff = time.Second
					select {
					case kick <- struct{}{}:
					default:
					}
				case err := <-stream.Err:
					if err == nil {
						err = io.EOF
					}
					return err
				}
			}
		}()
		cancel()
		r.events.Store(false)
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, io.EOF) {
			r.log.Warn("docker events stream broke; resubscribing", "error", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}
