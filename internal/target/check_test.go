package target

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// clobbering is a directory target whose Put replaces what is there, as a careless server's.
type clobbering struct{ *Local }

func (c clobbering) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	_ = c.Local.Delete(ctx, key)
	return c.Local.Put(ctx, key, r)
}

// leaky is a directory target whose failed Put stores what it got so far.
type leaky struct{ *Local }

func (l leaky) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	b, _ := io.ReadAll(r)
	return l.Local.Put(ctx, key, bytes.NewReader(b))
}

func TestCheckFindsWhatBreaksTheContract(t *testing.T) {
	ctx := context.Background()
	newLocal := func() *Local {
		l, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	failed := func(steps []CheckStep) map[string]string {
		out := map[string]string{}
		for _, s := range steps {
			if s.Err != nil {
				out[s.Operation] = s.Err.Error()
			}
		}
		return out
	}
	if f := failed(Check(ctx, newLocal())); len(f) != 0 {
		t.Errorf("a directory fails the check: %v", f)
	}
	if f := failed(Check(ctx, clobbering{newLocal()})); !strings.Contains(f["no-clobber"], "replaced it") {
		t.Errorf("a target that replaces objects: %v", f)
	}
	if f := failed(Check(ctx, leaky{newLocal()})); !strings.Contains(f["interrupted write"], "was stored") {
		t.Errorf("a target that stores broken writes: %v", f)
	}
	l := newLocal()
	m, err := Measure(ctx, l, 3<<20+5)
	if err != nil || m.Bytes != 3<<20+5 || m.Upload <= 0 || m.Download <= 0 {
		t.Errorf("Measure = %+v, %v", m, err)
	}
	if keys, _ := Collect(l.List(ctx, "")); len(keys) != 0 {
		t.Errorf("Measure left %v", keys)
	}
}
