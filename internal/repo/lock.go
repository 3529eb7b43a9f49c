package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Lock kinds.
const (
	Shared    = "shared"    // backups, checks
	Exclusive = "exclusive" // prunes
)

// Lock timing: a held lock is refreshed every LockRefresh; one not refreshed for LockStale
// is ignored (its holder crashed or hangs; a holder whose refresh failed that long gives up
// before it publishes anything).
const (
	LockRefresh = 5 * time.Minute
	LockStale   = 30 * time.Minute
)

// ErrLocked is wrapped when another operation holds a conflicting lock.
var ErrLocked = errors.New("the repository is locked")

// LockInfo is a lock object's content.
type LockInfo struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Kind      string    `json:"kind"`
	Created   time.Time `json:"created"`
	Refreshed time.Time `json:"refreshed"`
	key       string
}

// Stale reports whether the lock was not refreshed for LockStale at now.
func (l LockInfo) Stale(now time.Time) bool { return now.Sub(l.Refreshed) > LockStale }

// Lock is a lock this process holds.
type Lock struct {
	r         *Repo
	mu        sync.Mutex
	info      LockInfo
	refreshed time.Time // when the last refresh succeeded
	stop      chan struct{}
	done      chan struct{}
}

// Locks lists the repository's locks (unreadable lock objects count as live, refreshed at
// their modification time).
func (r *Repo) Locks(ctx context.Context) ([]LockInfo, error) {
	var out []LockInfo
	for o, err := range r.t.List(ctx, "locks/") {
		if err != nil {
			return nil, fmt.Errorf("listing locks in %s: %w", r.t, err)
		}
		l := LockInfo{key: o.Key, Refreshed: o.ModTime, Kind: "unreadable"}
		if b, err := r.get(ctx, o.Key, 64<<10); err == nil {
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

// lock takes a lock: Put it, then list: a conflicting live lock makes it let go again.
func (r *Repo) lock(ctx context.Context, kind string) (*Lock, error) {
	deadline := r.a.Now().Add(r.a.LockWait)
	for {
		l, conflict, err := r.tryLock(ctx, kind)
		if err != nil || conflict == nil {
			return l, err
		}
		if kind == Exclusive || !r.a.Now().Before(deadline) {
			what := "a prune is running"
			if kind == Exclusive {
				what = "a backup (or check) is in progress"
			}
			return nil, fmt.Errorf("repository %s in %s: %s (%s lock of %s pid %d, refreshed %s); try again later: %w",
				r.cfg.ID, r.t, what, conflict.Kind, conflict.Host, conflict.PID, conflict.Refreshed.Format(time.RFC3339), ErrLocked)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}

func (r *Repo) tryLock(ctx context.Context, kind string) (*Lock, *LockInfo, error) {
	now := r.a.Now()
	l := &Lock{r: r, info: LockInfo{Host: r.a.Host, PID: os.Getpid(), Kind: kind, Created: now, Refreshed: now}, refreshed: now}
	if err := l.write(ctx); err != nil {
		return nil, nil, err
	}
	if err := r.hook(ctx, "lock."+kind+".put"); err != nil {
		l.remove(ctx)
		return nil, nil, err
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		l.remove(ctx)
		return nil, nil, err
	}
	for _, o := range locks {
		if o.key == l.info.key || o.Stale(now) {
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
	l.info.key = "locks/" + randomHex(16)
	b, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	return l.r.put(ctx, l.info.key, b, false)
}

func (l *Lock) remove(ctx context.Context) {
	if err := l.r.t.Delete(context.WithoutCancel(ctx), l.info.key); err != nil {
		l.r.a.Log.Warn("could not remove the repository lock", "lock", l.info.key, "error", err)
	}
}

func (l *Lock) keepFresh() {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Refresh(context.Background()); err != nil {
				l.r.a.Log.Warn("could not refresh the repository lock", "error", err)
			}
		}
	}
}

// Refresh replaces the lock object by a new one (then deletes the old).
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.info.key
	l.info.Refreshed = l.r.a.Now()
	if err := l.write(ctx); err != nil {
		l.info.key = old
		return err
	}
	l.refreshed = l.info.Refreshed
	return l.r.t.Delete(ctx, old)
}

// Valid fails when the lock was not refreshed for so long that others may ignore it.
func (l *Lock) Valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if age := l.r.a.Now().Sub(l.refreshed); age > LockStale-LockRefresh {
		return fmt.Errorf("the repository lock was last refreshed %s ago: a prune may have run meanwhile, so nothing is published: %w", age.Round(time.Second), ErrLocked)
	}
	return nil
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

// RemoveStaleLocks deletes locks not refreshed for LockStale (left by crashed operations);
// with all, every lock (when the operator knows nothing runs).
func (r *Repo) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range locks {
		if all || l.Stale(r.a.Now()) {
			if err := r.t.Delete(ctx, l.key); err != nil {
				return n, fmt.Errorf("deleting lock %s in %s: %w", l.key, r.t, err)
			}
			n++
		}
	}
	return n, nil
}
