// Package lock keeps a repository's locks: objects under locks/ that backups (shared) and
// prunes (exclusive) create, then list: a conflicting live lock makes the newcomer let go.
// Held locks are refreshed; stale ones are ignored.
package lock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Locker takes and lists the locks of the repository on T.
type Locker struct {
	T    target.Target
	Name string // the repository, for messages
	Host string
	Wait time.Duration // how long a shared lock waits for an exclusive one to go
	Now  func() time.Time
	Log  *slog.Logger
	Hook func(ctx context.Context, point string) error
}

// Lock kinds.
const (
	Shared    = "shared"    // backups, checks
	Exclusive = "exclusive" // prunes
)

// Timing: a held lock is refreshed every RefreshEvery; one not refreshed for Stale is ignored (its holder crashed or hangs; a holder whose refresh failed that long gives up
// before it publishes anything).
const (
	RefreshEvery = 5 * time.Minute
	Stale        = 30 * time.Minute
)

// ErrLocked is wrapped when another operation holds a conflicting lock.
var ErrLocked = errors.New("the repository is locked")

// Info is a lock object's content.
type Info struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Kind      string    `json:"kind"`
	Created   time.Time `json:"created"`
	Refreshed time.Time `json:"refreshed"`
	key       string
	modTime   time.Time // the object's, by the target's clock (zero: unknown)
}

// IsStale reports whether the lock was not refreshed for Stale at now. A lock claiming to be
// refreshed more than Stale after its object was written (a forged one, or a clock far
// ahead) is taken as refreshed when it was written: else it would never go stale.
func (l Info) IsStale(now time.Time) bool {
	last := l.Refreshed
	if !l.modTime.IsZero() && last.After(l.modTime.Add(Stale)) {
		last = l.modTime
	}
	return now.Sub(last) > Stale
}

// Lock is a lock this process holds.
type Lock struct {
	lk        *Locker
	mu        sync.Mutex
	info      Info
	refreshed time.Time // when the last refresh succeeded
	stop      chan struct{}
	done      chan struct{}
}

// List lists the repository's locks (unreadable lock objects count as live, refreshed at
// their modification time).
func (lk *Locker) List(ctx context.Context) ([]Info, error) {
	var out []Info
	for o, err := range lk.T.List(ctx, "locks/") {
		if err != nil {
			return nil, fmt.Errorf("listing locks in %s: %w", lk.T, err)
		}
		l := Info{key: o.Key, Refreshed: o.ModTime, Kind: "unreadable", modTime: o.ModTime}
		if b, err := lk.get(ctx, o.Key); err == nil {
			if json.Unmarshal(b, &l) != nil {
				l.Kind = "unreadable"
			}
			if o.ModTime.After(l.Refreshed) {
				l.Refreshed = o.ModTime
			}
		} else if errors.Is(err, target.ErrNotExist) {
			continue // released meanwhile
		}
		out = append(out, l)
	}
	return out, nil
}

func (lk *Locker) get(ctx context.Context, key string) ([]byte, error) {
	rc, err := lk.T.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<10))
}

// Acquire takes a lock: Put it, then list: a conflicting live lock makes it let go again.
func (lk *Locker) Acquire(ctx context.Context, kind string) (*Lock, error) {
	deadline := lk.Now().Add(lk.Wait)
	for {
		l, conflict, err := lk.try(ctx, kind)
		if err != nil || conflict == nil {
			return l, err
		}
		if kind == Exclusive || !lk.Now().Before(deadline) {
			what := "a prune is running"
			if kind == Exclusive {
				what = "a backup (or check) is in progress"
			}
			return nil, fmt.Errorf("%s: %s (%s lock of %s pid %d, refreshed %s); try again later: %w",
				lk.Name, what, conflict.Kind, conflict.Host, conflict.PID, conflict.Refreshed.Format(time.RFC3339), ErrLocked)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}

func (lk *Locker) try(ctx context.Context, kind string) (*Lock, *Info, error) {
	now := lk.Now()
	l := &Lock{lk: lk, info: Info{Host: lk.Host, PID: os.Getpid(), Kind: kind, Created: now, Refreshed: now}, refreshed: now}
	if err := l.write(ctx); err != nil {
		return nil, nil, err
	}
	if lk.Hook != nil {
		if err := lk.Hook(ctx, "lock."+kind+".put"); err != nil {
			l.remove(ctx)
			return nil, nil, fmt.Errorf("stopped at lock.%s.put: %w", kind, err)
		}
	}
	locks, err := lk.List(ctx)
	if err != nil {
		l.remove(ctx)
		return nil, nil, err
	}
	for _, o := range locks {
		if o.key == l.info.key || o.IsStale(now) {
			continue
		}
		if kind == Exclusive || o.Kind != Shared {
			l.remove(ctx)
			return nil, &o, nil
		}
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.keepFresh()
	return l, nil, nil
}

func (l *Lock) write(ctx context.Context) error {
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		return err
	}
	l.info.key = "locks/" + hex.EncodeToString(r)
	b, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	if _, err := l.lk.T.Put(ctx, l.info.key, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%s: storing a lock: %w", l.lk.Name, err)
	}
	return nil
}

func (l *Lock) remove(ctx context.Context) {
	if err := l.lk.T.Delete(context.WithoutCancel(ctx), l.info.key); err != nil {
		l.lk.Log.Warn("could not remove the repository lock", "lock", l.info.key, "error", err)
	}
}

func (l *Lock) keepFresh() {
	defer close(l.done)
	t := time.NewTicker(RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Refresh(context.Background()); err != nil {
				l.lk.Log.Warn("could not refresh the repository lock", "error", err)
			}
		}
	}
}

// Refresh replaces the lock object by a new one (then deletes the old).
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.info.key
	l.info.Refreshed = l.lk.Now()
	if err := l.write(ctx); err != nil {
		l.info.key = old
		return err
	}
	l.refreshed = l.info.Refreshed
	return l.lk.T.Delete(ctx, old)
}

// Valid fails when the lock was not refreshed for so long that others may ignore it.
func (l *Lock) Valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age := l.lk.Now().Sub(l.refreshed); age > Stale-RefreshEvery {
		return fmt.Errorf("the repository lock was last refreshed %s ago: a prune may have run meanwhile, so nothing is published: %w", age.Round(time.Second), ErrLocked)
	}
	return nil
}

// Stop stops refreshing without releasing: the lock stays until it is stale (as a crashed
// process's would).
func (l *Lock) Stop() {
	close(l.stop)
	<-l.done
}

// Release stops refreshing and deletes the lock.
func (l *Lock) Release(ctx context.Context) {
	if l == nil {
		return
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remove(ctx)
}

// RemoveStale deletes locks not refreshed for Stale (left by crashed operations); with all,
// every lock (when the operator knows nothing runs).
func (lk *Locker) RemoveStale(ctx context.Context, all bool) (int, error) {
	locks, err := lk.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range locks {
		if all || l.IsStale(lk.Now()) {
			if err := lk.T.Delete(ctx, l.key); err != nil {
				return n, fmt.Errorf("%s: deleting lock %s: %w", lk.Name, l.key, err)
			}
			n++
		}
	}
	return n, nil
}
