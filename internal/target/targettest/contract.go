// Package targettest holds the contract every target keeps, as a test any kind of target runs
// against its real server: puts that never replace and leave nothing when they fail, reads of
// exactly what was stored, listings in S3's lexical order, keys that cannot escape.
package targettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

// Contract runs the contract's subtests on targets made by open, each empty and its own (a
// fresh directory or prefix on the server).
func Contract(t *testing.T, open func(t *testing.T) target.Target) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, open(t)) })
	t.Run("NeverReplaces", func(t *testing.T) { neverReplaces(t, open(t)) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { failedPut(t, open(t)) })
	t.Run("CancelledPutLeavesNothing", func(t *testing.T) { cancelledPut(t, open(t)) })
	t.Run("ListsInLexicalOrder", func(t *testing.T) { lexicalOrder(t, open(t)) })
	t.Run("RefusesEscapes", func(t *testing.T) { refusesEscapes(t, open(t)) })
	t.Run("Pin", func(t *testing.T) { pin(t, open(t)) })
}

// Payload is n random bytes.
func Payload(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Read reads the object at key whole.
func Read(t testing.TB, tg target.Target, key string) []byte {
	t.Helper()
	rc, err := tg.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b
}

// Keys lists the keys under prefix.
func Keys(t testing.TB, tg target.Target, prefix string) []string {
	t.Helper()
	objs, err := target.Collect(tg.List(context.Background(), prefix))
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

func roundTrip(t *testing.T, tg target.Target) {
	ctx := context.Background()
	small, big := []byte("hello"), Payload(t, 9<<20+17) // more than a part or a buffer
	for key, body := range map[string][]byte{"p/s/a.bin": small, "p/s/big.bin": big, "p/empty": {}} {
		n, err := tg.Put(ctx, key, bytes.NewReader(body))
		if err != nil || n != int64(len(body)) {
			t.Fatalf("Put %s = %d, %v; want %d bytes", key, n, err, len(body))
		}
		if got := Read(t, tg, key); !bytes.Equal(got, body) {
			t.Errorf("Get %s: %d bytes differ from the %d put", key, len(got), len(body))
		}
	}
	objs, err := target.Collect(tg.List(ctx, "p/s/"))
	if err != nil || len(objs) != 2 || objs[0].Key != "p/s/a.bin" || objs[0].Size != 5 || objs[1].Size != int64(len(big)) {
		t.Errorf("List p/s/ = %+v, %v", objs, err)
	}
	for _, o := range objs {
		if o.ModTime.IsZero() || time.Since(o.ModTime) > time.Hour || time.Until(o.ModTime) > time.Hour {
			t.Errorf("%s: modification time %v, want about now", o.Key, o.ModTime)
		}
	}
	if _, err := tg.Get(ctx, "p/s/missing"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("Get(missing) = %v, want ErrNotExist", err)
	}
	if err := tg.Delete(ctx, "p/s/a.bin"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Delete(ctx, "p/s/a.bin"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	if _, err := tg.Get(ctx, "p/s/a.bin"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("Get after Delete = %v, want ErrNotExist", err)
	}
	if keys := Keys(t, tg, ""); !slices.Equal(keys, []string{"p/empty", "p/s/big.bin"}) {
		t.Errorf("List after Delete = %v", keys)
	}
}

func neverReplaces(t *testing.T, tg target.Target) {
	ctx := context.Background()
	if _, err := tg.Put(ctx, "p/a", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(ctx, "p/a", strings.NewReader("second")); !errors.Is(err, target.ErrExist) {
		t.Errorf("a second Put of the same key = %v, want ErrExist", err)
	}
	if got := Read(t, tg, "p/a"); string(got) != "first" {
		t.Errorf("the object was replaced: %q", got)
	}
	if keys := Keys(t, tg, ""); !slices.Equal(keys, []string{"p/a"}) {
		t.Errorf("List = %v, want only p/a", keys)
	}
}

// failingReader gives after bytes, then fails, as a broken source does.
type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func failedPut(t *testing.T, tg target.Target) {
	ctx := context.Background()
	if _, err := tg.Put(ctx, "p/s/x", &failingReader{after: 3 << 20}); err == nil {
		t.Fatal("a Put whose source failed succeeded")
	}
	if keys := Keys(t, tg, ""); len(keys) != 0 {
		t.Errorf("a failed Put left %v", keys)
	}
	if _, err := tg.Get(ctx, "p/s/x"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("Get after a failed Put = %v, want ErrNotExist", err)
	}
	// The key is free: the next Put stores it.
	if _, err := tg.Put(ctx, "p/s/x", strings.NewReader("whole")); err != nil {
		t.Errorf("Put after a failed one: %v", err)
	}
}

// slowReader gives a chunk, then blocks until its context ends.
type slowReader struct {
	ctx  context.Context
	sent bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return copy(p, bytes.Repeat([]byte{'x'}, len(p))), nil
	}
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

func cancelledPut(t *testing.T, tg target.Target) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	if _, err := tg.Put(ctx, "p/s/x", &slowReader{ctx: ctx}); err == nil {
		t.Fatal("a cancelled Put succeeded")
	}
	if keys := Keys(t, tg, ""); len(keys) != 0 {
		t.Errorf("a cancelled Put left %v", keys)
	}
}

func lexicalOrder(t *testing.T, tg target.Target) {
	ctx := context.Background()
	keys := []string{"p/db/db-x", "p/db/y", "p/db-x/z", "p/db.y", "p/dbz", "p/db/a/b/c", "q/a", "p/db/db/x"}
	for _, k := range keys {
		if _, err := tg.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := Keys(t, tg, ""); !slices.Equal(got, want) {
		t.Errorf("List = %v\nwant   %v (S3's lexical order)", got, want)
	}
	var under []string
	for _, k := range want {
		if strings.HasPrefix(k, "p/db/") {
			under = append(under, k)
		}
	}
	if got := Keys(t, tg, "p/db/"); !slices.Equal(got, under) {
		t.Errorf("List p/db/ = %v, want %v", got, under)
	}
	// A listing stopped early ends cleanly.
	for range tg.List(ctx, "") {
		break
	}
}

func refusesEscapes(t *testing.T, tg target.Target) {
	ctx := context.Background()
	for _, k := range []string{"../x", "/abs", "a/../../b", ".hidden", "p/.x.tmp-1", "a\nb"} {
		if _, err := tg.Put(ctx, k, strings.NewReader("x")); err == nil {
			t.Errorf("Put %q accepted", k)
		}
		if _, err := tg.Get(ctx, k); err == nil {
			t.Errorf("Get %q accepted", k)
		}
		if err := tg.Delete(ctx, k); err == nil {
			t.Errorf("Delete %q accepted", k)
		}
	}
	if keys := Keys(t, tg, ""); len(keys) != 0 {
		t.Errorf("refused keys left %v", keys)
	}
}

func pin(t *testing.T, tg target.Target) {
	ctx := context.Background()
	body := Payload(t, 3<<20)
	if _, err := tg.Put(ctx, "p/a", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	p, err := target.Pin(ctx, tg, "p/a")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 2 {
		rc, err := p.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("a pinned read gave %d bytes (%v), want the %d put", len(got), err, len(body))
		}
	}
	if s := p.Size(); s != -1 && s != int64(len(body)) {
		t.Errorf("pinned size %d, want %d", s, len(body))
	}
	// The object replaced behind the target's back (deleted and put anew): a pinned read
	// gives the first bytes or fails with ErrChanged, never the new ones.
	if err := tg.Delete(ctx, "p/a"); err != nil {
		t.Fatal(err)
	}
	other := Payload(t, 3<<20)
	if _, err := tg.Put(ctx, "p/a", bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	rc, err := p.Open(ctx)
	if err != nil {
		return // refused: fine
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err == nil && bytes.Equal(got, other) && p.Size() != -1 {
		t.Errorf("a pinned object read the bytes that replaced it")
	}
}
