package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// CheckStep is one operation of Check, how long it took and how it went.
type CheckStep struct {
	Operation string // "write", "no-clobber", "interrupted write", "list", "read", "delete"
	Took      time.Duration
	Err       error
}

// Requirer is implemented by targets that can say, in their own words, what the credentials
// need for an operation of Check ("write", "list", "read", "delete"): shown when it fails.
type Requirer interface {
	Requirement(operation string) string
}

// Requirement is what t's credentials need for operation, or "" when t does not say.
func Requirement(t Target, operation string) string {
	if s, ok := t.(*sub); ok {
		return Requirement(s.t, operation)
	}
	if r, ok := t.(Requirer); ok {
		return r.Requirement(operation)
	}
	return ""
}

// checkPrefix is where Check's probe objects go.
const checkPrefix = "docker-backup-check/"

// Check proves on a live target what every backup relies on, one step at a time: a probe
// object is written, a second write of its key is refused and changes nothing, a write whose
// source fails leaves nothing listed, the probe is listed, read back whole and deleted. A
// step that fails is named, so that a missing permission is found before the first backup
// needs it. Steps after a failed write are not run.
func Check(ctx context.Context, t Target) []CheckStep {
	key := checkPrefix + "probe-" + probeID()
	body := []byte("docker-backup target check " + key + "\n")
	var steps []CheckStep
	step := func(op string, f func() error) error {
		start := time.Now()
		err := f()
		steps = append(steps, CheckStep{Operation: op, Took: time.Since(start), Err: err})
		return err
	}
	// Armed before the write: a write whose reply was lost may have stored the probe.
	defer func() {
		cleanup := context.WithoutCancel(ctx)
		_ = t.Delete(cleanup, key)
		_ = RemoveIncomplete(cleanup, t, key)
	}()
	if step("write", func() error { _, err := t.Put(ctx, key, bytes.NewReader(body)); return err }) != nil {
		return steps
	}
	step("no-clobber", func() error { return checkNoClobber(ctx, t, key, body) })
	step("interrupted write", func() error { return checkInterrupted(ctx, t) })
	step("list", func() error { return checkListed(ctx, t, key, int64(len(body))) })
	step("read", func() error { return checkRead(ctx, t, key, body) })
	step("delete", func() error {
		if err := t.Delete(ctx, key); err != nil {
			return err
		}
		if _, err := t.Get(ctx, key); !errors.Is(err, ErrNotExist) {
			return fmt.Errorf("the probe object %s is still there after its delete (%v)", key, err)
		}
		return nil
	})
	return steps
}

func probeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func checkNoClobber(ctx context.Context, t Target, key string, body []byte) error {
	_, err := t.Put(ctx, key, bytes.NewReader([]byte("replaced")))
	switch {
	case err == nil:
		return fmt.Errorf("a second write of %s replaced it: this target cannot keep backups from being overwritten", key)
	case !errors.Is(err, ErrExist):
		return fmt.Errorf("a second write of %s failed, but not as an existing object: %w", key, err)
	}
	return checkRead(ctx, t, key, body)
}

// failAfter gives n bytes, then fails as a broken source does.
type failAfter struct{ n int }

var errProbeSource = errors.New("the check's source broke on purpose")

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errProbeSource
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

func checkInterrupted(ctx context.Context, t Target) error {
	key := checkPrefix + "interrupted-" + probeID()
	if _, err := t.Put(ctx, key, &failAfter{n: 1 << 20}); err == nil {
		_ = t.Delete(ctx, key)
		return fmt.Errorf("a write whose source failed was stored as %s", key)
	}
	for o, err := range t.List(ctx, key) {
		if err != nil {
			return err
		}
		if o.Key == key {
			_ = t.Delete(ctx, key)
			return fmt.Errorf("a write whose source failed left %s listed", key)
		}
	}
	_ = RemoveIncomplete(ctx, t, key)
	return nil
}

func checkListed(ctx context.Context, t Target, key string, size int64) error {
	for o, err := range t.List(ctx, checkPrefix) {
		if err != nil {
			return err
		}
		if o.Key == key {
			if o.Size != size {
				return fmt.Errorf("the probe object %s is listed with %d bytes, %d were written", key, o.Size, size)
			}
			return nil
		}
	}
	return fmt.Errorf("the probe object %s was written but is not listed", key)
}

func checkRead(ctx context.Context, t Target, key string, body []byte) error {
	rc, err := t.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := io.ReadAll(io.LimitReader(rc, int64(len(body))+1))
	if err == nil && !bytes.Equal(got, body) {
		err = fmt.Errorf("the probe object read back differs from what was written")
	}
	return err
}

// Throughput is what Measure saw: the bytes moved each way and how long each took.
type Throughput struct {
	Bytes            int64
	Upload, Download time.Duration
}

// Measure writes size bytes of random data to the target, reads them back (checking every
// byte) and deletes them, and reports how long each way took.
func Measure(ctx context.Context, t Target, size int64) (Throughput, error) {
	key := checkPrefix + "throughput-" + probeID()
	res := Throughput{Bytes: size}
	seed := make([]byte, 1<<20)
	_, _ = rand.Read(seed)
	start := time.Now()
	defer func() {
		cleanup := context.WithoutCancel(ctx)
		_ = t.Delete(cleanup, key)
		_ = RemoveIncomplete(cleanup, t, key)
	}()
	if _, err := t.Put(ctx, key, io.LimitReader(repeat(seed), size)); err != nil {
		return res, fmt.Errorf("writing %d bytes: %w", size, err)
	}
	res.Upload = time.Since(start)
	start = time.Now()
	rc, err := t.Get(ctx, key)
	if err != nil {
		return res, fmt.Errorf("reading them back: %w", err)
	}
	defer rc.Close()
	if err := sameBytes(rc, io.LimitReader(repeat(seed), size)); err != nil {
		return res, fmt.Errorf("reading them back: %w", err)
	}
	res.Download = time.Since(start)
	return res, nil
}

// repeat is seed over and over.
func repeat(seed []byte) io.Reader { return &repeater{seed: seed} }

type repeater struct {
	seed []byte
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := copy(p, r.seed[r.off:])
	r.off = (r.off + n) % len(r.seed)
	return n, nil
}

// sameBytes reads got and want to their ends and says whether they hold the same bytes.
func sameBytes(got, want io.Reader) error {
	a, b := make([]byte, 256<<10), make([]byte, 256<<10)
	var off int64
	for {
		n, err := io.ReadFull(got, a)
		m, _ := io.ReadFull(want, b[:n])
		if !bytes.Equal(a[:n], b[:m]) {
			return fmt.Errorf("the bytes read back differ from those written, from byte %d on", off)
		}
		off += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if extra, _ := want.Read(b[:1]); extra > 0 {
				return fmt.Errorf("only %d bytes were read back", off)
			}
			return nil
		case err != nil:
			return err
		}
	}
}
