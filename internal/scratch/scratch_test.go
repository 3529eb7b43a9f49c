package scratch

import (
	"context"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/enginetest"
	"github.com/moby/moby/client"
)

// slowDaemon creates containers the way dockerd does under load: slowly, and to the end even
// when the client gave up on the request.
type slowDaemon struct {
	*enginetest.Engine // the service's container
	delay              time.Duration
	mu                 sync.Mutex
	made               map[string]bool
}

func (d *slowDaemon) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	done := make(chan struct{})
	go func() {
		time.Sleep(d.delay)
		d.mu.Lock()
		d.made[o.Name] = true
		d.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return client.ContainerCreateResult{ID: o.Name}, nil
	case <-ctx.Done():
		return client.ContainerCreateResult{}, ctx.Err() // the daemon goes on
	}
}

func (d *slowDaemon) ContainerRemove(ctx context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.made[id] {
		return client.ContainerRemoveResult{}, cerrdefs.ErrNotFound
	}
	delete(d.made, id)
	return client.ContainerRemoveResult{}, nil
}

// A scratch copy whose creation is cancelled half-way (the sidecar stopping) leaves no
// container behind, though the engine finishes creating it after the request was given up.
func TestCreateCancelledLeavesNothing(t *testing.T) {
	d := &slowDaemon{Engine: enginetest.New(enginetest.Service("shop", "app", enginetest.WithImage("app"))), delay: 200 * time.Millisecond, made: map[string]bool{}}
	from, err := containers.Inspect(context.Background(), d, "shop-app-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := Create(ctx, d, Spec{From: from, Owner: "test"}); err == nil {
		t.Fatal("a cancelled create succeeded")
	}
	time.Sleep(400 * time.Millisecond) // the engine has finished what it was asked
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.made) != 0 {
		t.Errorf("left behind: %v", d.made)
	}
}
