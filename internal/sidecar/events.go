package sidecar

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

// watch follows container events and reconciles after each burst, and every Resync as a
// safety net; when the stream breaks (an error, a daemon restart) it resubscribes from where
// it stopped, backing off up to 30 s.
func (d *Daemon) watch(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go d.follow(ctx, kick)
	resync := time.NewTicker(d.cfg.Resync)
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
			d.reconcileLogged(ctx, "event")
		case <-resync.C:
			d.reconcileLogged(ctx, "resync")
			for _, name := range d.cfg.TargetNames() {
				d.updateUsage(ctx, name)
			}
		}
	}
}

func (d *Daemon) reconcileLogged(ctx context.Context, why string) {
	if err := d.Reconcile(ctx); err != nil && ctx.Err() == nil {
		d.log.Error("reconcile failed", "trigger", why, "error", err)
	}
}

func (d *Daemon) follow(ctx context.Context, kick chan<- struct{}) {
	since := time.Now()
	backoff := time.Second
	for ctx.Err() == nil {
		filters := make(client.Filters).Add("type", "container")
		for _, e := range []string{"create", "start", "stop", "die", "destroy", "update", "rename"} {
			filters = filters.Add("event", e)
		}
		if d.cfg.AllProjects {
			filters = filters.Add("label", labels.Prefix+"enable")
		} else {
			filters = filters.Add("label", containers.LabelProject+"="+d.cfg.Project)
		}
		subCtx, cancel := context.WithCancel(ctx)
		stream := d.api.Events(subCtx, client.EventsListOptions{Filters: filters, Since: strconv.FormatInt(since.Unix(), 10)})
		d.setEvents(true)
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
		d.setEvents(false)
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, io.EOF) {
			d.log.Warn("docker events stream broke; resubscribing", "error", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (d *Daemon) setEvents(up bool) {
	d.events.Store(up)
	d.obs.EventsConnected(up)
}
