// Package pipeline moves a backup's bytes: it streams a strategy's output through
// compression and a SHA-256 into a target and writes the (signed) manifest beside it; for a
// restore it pins the artifact, reads it completely to verify it (and lets the strategy check
// its content) before anything in the container is touched, then streams the same bytes
// into the strategy with the checksum verified again to the last byte; and it lists a
// target's backups from their manifests.
package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/version"
)

// BackupRequest says what to back up, how, and where.
type BackupRequest struct {
	Container   *containers.Container
	Strategy    strategy.Strategy
	Target      target.Target
	Compression artifact.Compression
	// Key is where the artifact goes (see artifact.Key).
	Key string
	// Job names the sidecar job, recorded in the manifest; empty for a backup made by hand.
	Job string
	// Signer signs the manifest; nil writes it unsigned.
	Signer *artifact.SigningKey
	// Encrypt, when not empty, encrypts the compressed stream for these recipients (age):
	// the manifest's size and SHA-256 are then of the ciphertext.
	Encrypt *crypt.Recipients
	// Progress, when set, is called with the number of raw bytes produced so far.
	Progress func(rawBytes int64)
	Log      *slog.Logger
}

// BackupResult describes a finished backup.
type BackupResult struct {
	Key      string
	Manifest *artifact.Manifest
	Duration time.Duration
}

// ErrEmptyBackup is wrapped when a strategy succeeded but produced no data.
var ErrEmptyBackup = errors.New("the backup produced no data")

// faultAfter is how many raw bytes pass before the "backup-stream" fault point.
const faultAfter = 1 << 20

// Backup runs one backup. On any failure nothing is left on the target: no artifact, no
// manifest; older backups are never touched. The artifact is visible only once its
// manifest is written, last.
func Backup(ctx context.Context, req BackupRequest) (*BackupResult, error) {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if req.Key == "" {
		return nil, errors.New("pipeline.Backup needs a key")
	}
	c := req.Container
	if req.Compression == "" {
		req.Compression = artifact.Zstd
	}
	started := time.Now()
	raw := &counter{onAdd: req.Progress, fault: func(n int64) {
		if n >= faultAfter {
			faults.Point(ctx, "backup-stream")
		}
	}}
	out, sum, stored, err := stream(ctx, req, raw)
	if err != nil {
		return nil, err
	}
	faults.Point(ctx, "backup-uploaded")

	m := &artifact.Manifest{
		FormatVersion: artifact.FormatVersion,
		Artifact:      req.Key,
		Strategy:      req.Strategy.Name(),
		Project:       c.Project,
		Service:       c.Service,
		Job:           req.Job,
		Container:     c.Name,
		Image:         c.Image,
		ImageID:       c.ImageID,
		CreatedAt:     started.UTC(),
		DurationMS:    time.Since(started).Milliseconds(),
		Size:          stored,
		RawSize:       raw.n,
		SHA256:        artifact.HexSum(sum),
		Compression:   req.Compression,
		Tool:          artifact.Tool{Name: "docker-backup", Version: version.Version},
		Source:        out.source,
		Contents:      out.contents,
	}
	if !req.Encrypt.Empty() {
		m.Encryption = &artifact.Encryption{Scheme: artifact.EncryptionAge, Recipients: req.Encrypt.Names}
	}
	if req.Signer != nil {
		if err := req.Signer.Sign(m); err != nil {
			_ = req.Target.Delete(context.WithoutCancel(ctx), req.Key)
			return nil, err
		}
	}
	body, err := m.Marshal()
	if err != nil {
		_ = req.Target.Delete(context.WithoutCancel(ctx), req.Key)
		return nil, err
	}
	if _, err := req.Target.Put(ctx, artifact.ManifestKey(req.Key), bytes.NewReader(body)); err != nil {
		// Without its manifest the artifact is invisible; remove it rather than leave it.
		_ = req.Target.Delete(context.WithoutCancel(ctx), req.Key)
		return nil, fmt.Errorf("writing the manifest of %s: %w", req.Key, err)
	}
	faults.Point(ctx, "backup-manifest")
	log.Debug("backup complete", "key", req.Key, "size", stored, "raw_size", raw.n, "sha256", m.SHA256)
	return &BackupResult{Key: req.Key, Manifest: m, Duration: time.Since(started)}, nil
}

// produced is what the strategy said about its backup.
type produced struct {
	source   strategy.Source
	contents *artifact.Contents
	err      error
}

// stream runs the strategy into compression, hashing and the target, concurrently.
func stream(ctx context.Context, req BackupRequest, raw *counter) (produced, []byte, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	hash := sha256.New()

	// first keeps the error of the side that failed first: the other side's error is only
	// its consequence (a closed pipe, a cancelled context).
	var first firstError
	done := make(chan produced, 1)
	go func() {
		p := produce(ctx, req, io.MultiWriter(pw, hash), raw)
		first.set(p.err)
		pw.CloseWithError(p.err) // nil: the target sees EOF and publishes the object
		done <- p
	}()

	stored, putErr := req.Target.Put(ctx, req.Key, pr)
	if putErr != nil {
		first.set(putErr)
		// Stop the producer: its next write fails, the container's command sees a closed pipe.
		pr.CloseWithError(putErr)
		cancel()
	}
	p := <-done
	if p.err != nil || putErr != nil {
		// On a producer failure the target saw the error through the pipe and left nothing.
		return produced{}, nil, 0, first.get()
	}
	return p, hash.Sum(nil), stored, nil
}

// produce runs the strategy into compression (and encryption): strategy → compression →
// age → out; beside compression, the strategy's Count sees the raw stream.
func produce(ctx context.Context, req BackupRequest, out io.Writer, raw *counter) produced {
	fail := func(err error) produced { return produced{err: err} }
	sealed := io.WriteCloser(nopCloser{out})
	if !req.Encrypt.Empty() {
		var err error
		if sealed, err = req.Encrypt.Encrypt(out); err != nil {
			return fail(err)
		}
	}
	zw, err := req.Compression.NewWriter(sealed)
	if err != nil {
		return fail(err)
	}
	raw.w = zw
	var count strategy.Count
	if c, ok := req.Strategy.(strategy.Counter); ok {
		count = c.NewCount()
		raw.w = io.MultiWriter(zw, count)
	}
	source, err := req.Strategy.Backup(ctx, req.Container, raw)
	var contents *artifact.Contents
	if count != nil {
		// Always: it ends the count's reading.
		var cerr error
		if contents, cerr = count.Contents(); err == nil && cerr != nil {
			err = fmt.Errorf("%s backup of %s: %w", req.Strategy.Name(), req.Container, cerr)
		}
	}
	if err != nil {
		_ = zw.Close()
		return fail(err)
	}
	if raw.n == 0 {
		_ = zw.Close()
		return fail(fmt.Errorf("%s backup of %s: %w; refusing to store it as a success", req.Strategy.Name(), req.Container, ErrEmptyBackup))
	}
	if err := zw.Close(); err != nil {
		return fail(fmt.Errorf("compressing: %w", err))
	}
	if err := sealed.Close(); err != nil {
		return fail(fmt.Errorf("encrypting: %w", err))
	}
	return produced{source: source, contents: contents}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// firstError remembers the first non-nil error set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// counter counts bytes written through it or read through its reader.
type counter struct {
	w     io.Writer
	n     int64
	onAdd func(int64)
	fault func(int64) // the fault point of the stream, once past its threshold
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.add(n)
	return n, err
}

func (c *counter) add(n int) {
	before := c.n
	c.n += int64(n)
	if c.onAdd != nil && n > 0 {
		c.onAdd(c.n)
	}
	if c.fault != nil && before < faultAfter && c.n >= faultAfter {
		c.fault(c.n)
	}
}
