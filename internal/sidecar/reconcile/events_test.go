package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// flakyEvents is an events API whose first stream breaks at once (a daemon restart) and
// whose second one delivers an event.
type flakyEvents struct {
	API
	mu    sync.Mutex
	calls []client.EventsListOptions
}

func (f *flakyEvents) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	f.mu.Lock()
	f.calls = append(f.calls, opts)
	n := len(f.calls)
	f.mu.Unlock()
	msgs, errs := make(chan events.Message), make(chan error, 1)
	if n == 1 {
		errs <- errors.New("unexpected EOF")
	} else {
		go func() {
			select {
			case msgs <- events.Message{Type: "container", Action: "start", Time: 1_800_000_000}:
			case <-ctx.Done():
			}
		}()
	}
	return client.EventsResult{Messages: msgs, Err: errs}
}

func TestEventsStreamIsResubscribed(t *testing.T) {
	api := &flakyEvents{}
	d := New(Options{API: api, Project: "shop", Log: slog.New(slog.DiscardHandler)})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kick := make(chan struct{}, 1)
	go d.follow(ctx, kick)

	// Kicks: one per subscription, one per event. Wait for the event on the second stream.
	deadline := time.After(8 * time.Second)
	for {
		api.mu.Lock()
		n := len(api.calls)
		api.mu.Unlock()
		if n >= 2 && d.State().EventsConnected {
			break
		}
		select {
		case <-kick:
		case <-deadline:
			t.Fatalf("not resubscribed: %d subscriptions", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	api.mu.Lock()
	defer api.mu.Unlock()
	first, second := api.calls[0], api.calls[1]
	if first.Since == "" || second.Since == "" || second.Since < first.Since {
		t.Errorf("resubscribed without Since: %+v", second)
	}
	if got := second.Filters["label"]; !got["com.docker.compose.project=shop"] {
		t.Errorf("filters %v", second.Filters)
	}

}
