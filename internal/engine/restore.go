package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// ErrCorrupt is wrapped when an artifact does not match its manifest.
var ErrCorrupt = errors.New("artifact does not match its manifest")

// ReadManifest loads and validates the manifest of the artifact at key.
func ReadManifest(ctx context.Context, t target.Target, key string) (*artifact.Manifest, error) {
	rc, err := t.Get(ctx, artifact.ManifestKey(key))
	if err != nil {
		if errors.Is(err, target.ErrNotExist) {
			return nil, fmt.Errorf("no backup %q in %s (its manifest %s is missing): list backups with `docker backup ls --from %s`", key, t, artifact.ManifestKey(key), t)
		}
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", key, err)
	}
	m, err := artifact.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	switch {
	case m.Artifact == key:
	case strings.HasSuffix(key, "/"+m.Artifact):
		// Read from above the prefix it was written to (s3://bucket instead of
		// s3://bucket/host1): its key here is longer.
		m.Artifact = key
	default:
		return nil, fmt.Errorf("manifest of %s names another artifact (%q): %w", key, m.Artifact, ErrCorrupt)
	}
	return m, nil
}

// Verify reads the whole artifact and checks its size and SHA-256 against the manifest.
func Verify(ctx context.Context, t target.Target, m *artifact.Manifest, progress func(int64)) error {
	rc, err := t.Get(ctx, m.Artifact)
	if err != nil {
		return fmt.Errorf("opening %s: %w", m.Artifact, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, (&counter{onAdd: progress}).reader(ctx, rc))
	if err != nil {
		return fmt.Errorf("reading %s: %w", m.Artifact, err)
	}
	return checkSum(m, n, h.Sum(nil))
}

func checkSum(m *artifact.Manifest, n int64, sum []byte) error {
	if n != m.Size {
		return fmt.Errorf("%s is %d bytes but its manifest says %d (truncated or replaced): %w", m.Artifact, n, m.Size, ErrCorrupt)
	}
	if got := artifact.HexSum(sum); got != m.SHA256 {
		return fmt.Errorf("%s has sha256 %s but its manifest says %s (damaged or tampered with): %w", m.Artifact, got, m.SHA256, ErrCorrupt)
	}
	return nil
}

// RestoreRequest says which artifact to restore into which container.
type RestoreRequest struct {
	Target    target.Target
	Manifest  *artifact.Manifest
	Container *containers.Container
	Strategy  strategy.Strategy
	// StopContainer stops a running container during the restore and starts it again after.
	StopContainer bool
	Progress      func(rawBytes int64)
	Log           *slog.Logger
}

// Restore verifies the artifact completely, then streams it into the container. A corrupt
// artifact is refused before anything in the container is touched.
func Restore(ctx context.Context, req RestoreRequest) error {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := req.Manifest
	if m.Strategy != req.Strategy.Name() {
		return fmt.Errorf("%s is a %s backup and cannot be restored with the %s strategy", m.Artifact, m.Strategy, req.Strategy.Name())
	}
	if err := Verify(ctx, req.Target, m, nil); err != nil {
		return fmt.Errorf("refusing to restore, %s is untouched: %w", req.Container, err)
	}
	log.Info("artifact verified", "sha256", artifact.ShortSHA(m.SHA256))

	run := func(ctx context.Context) error {
		if err := req.Container.Refresh(ctx); err != nil {
			return err
		}
		rc, err := req.Target.Get(ctx, m.Artifact)
		if err != nil {
			return fmt.Errorf("opening %s: %w", m.Artifact, err)
		}
		defer rc.Close()
		h := sha256.New()
		var n int64
		tee := io.TeeReader(rc, writerFunc(func(p []byte) (int, error) { n += int64(len(p)); return h.Write(p) }))
		zr, err := m.Compression.NewReader(tee)
		if err != nil {
			return fmt.Errorf("decompressing %s: %w", m.Artifact, err)
		}
		defer zr.Close()
		var raw io.Reader = zr
		if req.Progress != nil {
			raw = (&counter{onAdd: req.Progress}).reader(ctx, zr)
		}
		if err := req.Strategy.Restore(ctx, req.Container, strategy.Data{Reader: raw, Size: m.RawSize, Source: m.Source}); err != nil {
			return err
		}
		// Drain what the decompressor did not need, then check the bytes were the verified ones.
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return fmt.Errorf("reading %s: %w", m.Artifact, err)
		}
		return checkSum(m, n, h.Sum(nil))
	}
	if req.StopContainer {
		return req.Container.WhileStopped(ctx, log, run)
	}
	return run(ctx)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// reader wraps r so that reads are counted and stop when ctx is cancelled.
func (c *counter) reader(ctx context.Context, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := r.Read(p)
		c.n += int64(n)
		if c.onAdd != nil && n > 0 {
			c.onAdd(c.n)
		}
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
