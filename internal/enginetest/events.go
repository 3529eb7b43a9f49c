package enginetest

import (
	"context"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Events subscribes to the events Emit sends from now on that match the filters (type,
// event, label); the stream ends with ctx's error when ctx ends.
func (e *Engine) Events(ctx context.Context, o client.EventsListOptions) client.EventsResult {
	msgs, errs := make(chan events.Message), make(chan error, 1)
	if err := e.call("Events", ""); err != nil {
		errs <- err
		return client.EventsResult{Messages: msgs, Err: errs}
	}
	sub := make(chan events.Message, 64)
	e.mu.Lock()
	e.subs[sub] = o.Filters
	e.mu.Unlock()
	go func() {
		defer func() {
			e.mu.Lock()
			delete(e.subs, sub)
			e.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			case m := <-sub:
				select {
				case msgs <- m:
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		}
	}()
	return client.EventsResult{Messages: msgs, Err: errs}
}

// Emit sends events to the streams subscribed whose filters they match.
func (e *Engine) Emit(ms ...events.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range ms {
		for sub, f := range e.subs {
			if matchEvent(m, f) {
				sub <- m
			}
		}
	}
}

func matchEvent(m events.Message, f client.Filters) bool {
	if len(f["type"]) > 0 && !f["type"][string(m.Type)] {
		return false
	}
	if len(f["event"]) > 0 && !f["event"][string(m.Action)] {
		return false
	}
	return matchLabels(m.Actor.Attributes, f)
}
