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
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/repo/snapshot"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/version"
)

// Destination is a named target.
type Destination struct {
	Name   string
	Target target.Target
	// LimitUpload caps the rate of what the backup sends to a remote target (its data,
	// chunk list and manifest); 0: no cap. A directory target is written at full speed.
	LimitUpload bandwidth.Rate
}

// BackupRequest says what to back up, how, and where.
type BackupRequest struct {
	Container *containers.Container
	Strategy  strategy.Strategy
	Target    target.Target
	// Targets, when set, replaces Target: the same bytes go to every one at once (one dump,
	// one compression); a target that fails is dropped and the others go on.
	Targets     []Destination
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
	// Stored names the targets that hold the backup, in the request's order; Failed, those
	// that do not, with why (see TargetsError).
	Stored []string
	Failed map[string]error
	// Snapshot is set for an incremental backup (Key is then the snapshot's key).
	Snapshot *snapshot.Snapshot
}

// TargetsError reports a backup stored on some targets only; it wraps ErrTarget.
type TargetsError struct {
	Stored []string
	Failed map[string]error
}

func (e *TargetsError) Error() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(e.Failed)) {
		parts = append(parts, fmt.Sprintf("%s: %v", name, e.Failed[name]))
	}
	return fmt.Sprintf("stored on %s, but not on %s", strings.Join(e.Stored, ", "), strings.Join(parts, "; "))
}

func (e *TargetsError) Unwrap() error { return ErrTarget }

// destinations are the request's targets.
func (req BackupRequest) destinations() []Destination {
	if len(req.Targets) > 0 {
		return req.Targets
	}
	return []Destination{{Name: req.Target.String(), Target: req.Target}}
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
	if req.Compression == "" {
		req.Compression = artifact.Zstd
	}
	if st, ok := req.Strategy.(strategy.Settler); ok {
		// Once published (or failed): a worker's removal goes on meanwhile.
		defer st.Settle()
	}
	for _, d := range req.destinations() {
		if d.LimitUpload > 0 && !target.Capped(d.Target) {
			log.Info("the upload cap does not apply to a directory target: it is written at full speed", "target", d.Name, "limit", d.LimitUpload.String())
		}
	}
	started := time.Now()
	task := watchTask(req.Container)
	raw := &counter{onAdd: req.Progress, fault: func(n int64) {
		if n >= faultAfter {
			faults.Point(ctx, "backup-stream")
		}
	}}
	out, sums, dests, err := stream(ctx, req, raw)
	if err != nil {
		return nil, err
	}
	var stored int64
	for _, d := range dests {
		if d.err == nil {
			stored = d.stored
		}
	}
	err = sums.check(stored)
	if err == nil {
		faults.Point(ctx, "backup-streamed")
		err = task.check(ctx)
	}
	if err != nil {
		for _, d := range dests {
			d.drop(ctx, req.Key, err)
		}
		return nil, err
	}
	putChunkLists(ctx, dests, req.Key, sums.list)
	faults.Point(ctx, "backup-uploaded")
	m := manifest(req, started, stored, raw.n, sums, out)
	body, err := seal(req, m)
	if err != nil {
		// Without its manifest the artifact is invisible; remove it rather than leave it.
		for _, d := range dests {
			if d.err == nil {
				d.drop(ctx, req.Key, nil)
			}
		}
		return nil, err
	}
	res := publish(ctx, dests, req.Key, body)
	res.Manifest = m
	if len(res.Stored) == 0 {
		return nil, firstFailure(dests)
	}
	faults.Point(ctx, "backup-manifest")
	res.Duration = time.Since(started)
	log.Debug("backup complete", "key", req.Key, "size", stored, "raw_size", raw.n, "sha256", m.SHA256, "targets", strings.Join(res.Stored, ", "))
	if len(res.Failed) > 0 {
		return res, &TargetsError{Stored: res.Stored, Failed: res.Failed}
	}
	return res, nil
}

// manifest is the manifest of the backup req made from started: stored bytes (of the raw
// size) whose sums are sums, and what the strategy produced.
func manifest(req BackupRequest, started time.Time, stored, rawSize int64, sums storedSums, out produced) *artifact.Manifest {
	c := req.Container
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
		RawSize:       rawSize,
		SHA256:        artifact.HexSum(sums.sum),
		Chunks:        artifact.DescribeList(sums.list),
		Compression:   req.Compression,
		Tool:          artifact.Tool{Name: "docker-backup", Version: version.Version},
		Source:        out.source,
		Contents:      out.contents,
	}
	if !req.Encrypt.Empty() {
		m.Encryption = &artifact.Encryption{Scheme: artifact.EncryptionAge, Recipients: req.Encrypt.Names}
	}
	return m
}

// seal signs m (when req has a signer) and marshals it.
func seal(req BackupRequest, m *artifact.Manifest) ([]byte, error) {
	if req.Signer != nil {
		if err := req.Signer.Sign(m); err != nil {
			return nil, err
		}
	}
	return m.Marshal()
}

// publish writes the manifest body beside the artifact on every target that holds it: a
// target where that fails loses the artifact too (without its manifest it is invisible).
func publish(ctx context.Context, dests []*dest, key string, body []byte) *BackupResult {
	res := &BackupResult{Key: key, Failed: map[string]error{}}
	for _, d := range dests {
		if d.err == nil {
			if _, err := target.PutLimited(ctx, d.t, artifact.ManifestKey(key), bytes.NewReader(body), d.limit); err != nil {
				d.drop(ctx, key, fmt.Errorf("writing the manifest of %s: %w", key, err))
			}
		}
		if d.err != nil {
			res.Failed[d.name] = d.err
		} else {
			res.Stored = append(res.Stored, d.name)
		}
	}
	return res
}

// firstFailure is the error of the first target that failed (for a single target: its error
// as it was).
func firstFailure(dests []*dest) error {
	for _, d := range dests {
		if d.err != nil {
			if len(dests) == 1 {
				return d.err
			}
			return fmt.Errorf("%s: %w", d.name, d.err)
		}
	}
	return ErrTarget
}

// storedSums are the stored stream's SHA-256 and chunk list.
type storedSums struct {
	sum, list []byte
}

func digestSums(d *artifact.Digest) storedSums {
	list, _ := d.List()
	return storedSums{sum: d.Sum(), list: list}
}

// check refuses sums that do not describe size stored bytes (a worker's report).
func (s storedSums) check(size int64) error {
	if len(s.sum) != sha256.Size || len(s.list)%sha256.Size != 0 || int64(len(s.list)/sha256.Size) != (size+artifact.ChunkSize-1)/artifact.ChunkSize {
		return fmt.Errorf("the stored stream's checksums do not describe its %d bytes (%d bytes of chunk list)", size, len(s.list))
	}
	return nil
}

// putChunkLists stores the chunk list beside the artifact on every target that holds it; a
// target that cannot is dropped (its artifact removed).
func putChunkLists(ctx context.Context, dests []*dest, key string, list []byte) {
	for _, d := range dests {
		if d.err != nil {
			continue
		}
		if _, err := target.PutLimited(ctx, d.t, artifact.ChunksKey(key), bytes.NewReader(list), d.limit); err != nil {
			d.drop(ctx, key, fmt.Errorf("writing the chunk list of %s: %w", key, err))
		}
	}
}

// drop removes what the backup stored on d (its artifact and chunk list) and, with err,
// records that d failed.
func (d *dest) drop(ctx context.Context, key string, err error) {
	ctx = context.WithoutCancel(ctx)
	_ = d.t.Delete(ctx, key)
	_ = d.t.Delete(ctx, artifact.ChunksKey(key))
	if err != nil && d.err == nil {
		d.err = err
	}
}

// produced is what the strategy said about its backup.
type produced struct {
	source   strategy.Source
	contents *artifact.Contents
	err      error
}

// dest is one target of a backup being streamed.
type dest struct {
	name   string
	t      target.Target
	limit  *bandwidth.Limiter // nil: no cap
	pw     *io.PipeWriter
	stored int64
	err    error // the target failed: nothing of the backup is left on it
	dead   bool  // no more bytes go to it
	done   chan struct{}
}

// stream runs the strategy into compression, hashing and every target, concurrently. A
// target that fails is dropped and the others go on; when none is left, the strategy is
// stopped.
func stream(ctx context.Context, req BackupRequest, raw *counter) (produced, storedSums, []*dest, error) {
	if ds := req.destinations(); len(ds) == 1 {
		if _, packs := req.Strategy.(strategy.Packer); packs {
			if fc, ok := target.Files(ds[0].Target); ok {
				return streamFile(ctx, req, raw, ds[0], fc)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	digest := artifact.NewDigest()
	var dests []*dest
	for _, d := range req.destinations() {
		pr, pw := io.Pipe()
		ds := &dest{name: d.Name, t: d.Target, limit: bandwidth.NewLimiter(d.LimitUpload), pw: pw, done: make(chan struct{})}
		dests = append(dests, ds)
		go func() {
			defer close(ds.done)
			ds.stored, ds.err = target.PutLimited(ctx, ds.t, req.Key, pr, ds.limit)
			if ds.err != nil {
				// Its next write fails: the fan-out drops it.
				pr.CloseWithError(ds.err)
			}
		}()
	}
	fan := &fanout{dests: dests}
	p := produce(ctx, req, io.MultiWriter(fan, digest), raw)
	for _, d := range dests {
		d.pw.CloseWithError(p.err) // nil: the target sees EOF and publishes the object
	}
	if p.err != nil {
		cancel()
	}
	for _, d := range dests {
		<-d.done
	}
	if p.err != nil {
		// The error of the side that failed first: with every target gone, theirs.
		if fan.allDead() {
			return produced{}, storedSums{}, nil, firstFailure(dests)
		}
		// The targets saw the error through their pipes and left nothing.
		return produced{}, storedSums{}, nil, p.err
	}
	for _, d := range dests {
		if d.err == nil {
			return p, digestSums(digest), dests, nil
		}
	}
	return produced{}, storedSums{}, nil, firstFailure(dests)
}

// streamFile runs a packing strategy (a worker beside the data) into a new file of a directory
// target: a worker on this host writes the file itself, given its descriptor, and says its
// SHA-256; on any other path the bytes come here and are hashed and written as they come.
func streamFile(ctx context.Context, req BackupRequest, raw *counter, d Destination, fc target.FileCreator) (produced, storedSums, []*dest, error) {
	pf, err := fc.Create(ctx, req.Key)
	if err != nil {
		return produced{}, storedSums{}, nil, err
	}
	sink := &fileSink{pf: pf, digest: artifact.NewDigest()}
	p := produce(ctx, req, sink, raw)
	if p.err != nil {
		pf.Discard()
		return produced{}, storedSums{}, nil, p.err
	}
	n, err := pf.Publish()
	if err == nil && n != sink.n {
		_ = d.Target.Delete(context.WithoutCancel(ctx), req.Key)
		err = fmt.Errorf("%s of %s: the file holds %d bytes, %d were written", req.Key, d.Target, n, sink.n)
	}
	if err != nil {
		return produced{}, storedSums{}, nil, err
	}
	done := make(chan struct{})
	close(done)
	return p, sink.sums(), []*dest{{name: d.Name, t: d.Target, stored: n, done: done}}, nil
}

// fileSink is a new file of a directory target that a backup writes, hashing what it writes
// (strategy.FileSink): a worker given its descriptor writes it and reports its SHA-256.
type fileSink struct {
	pf      *target.PendingFile
	digest  *artifact.Digest
	n       int64
	written *storedSums // the sums reported by whoever wrote the file (Wrote)
}

func (s *fileSink) Write(p []byte) (int, error) {
	if s.written != nil {
		return 0, errors.New("the backup file was written already")
	}
	n, err := s.pf.Write(p)
	s.digest.Write(p[:n])
	s.n += int64(n)
	return n, err
}

func (s *fileSink) File() *os.File { return s.pf.File() }

func (s *fileSink) Wrote(size int64, sum, chunks []byte) error {
	if s.n != 0 || s.written != nil {
		return errors.New("the backup file was written twice")
	}
	info, err := s.pf.File().Stat()
	if err != nil {
		return fmt.Errorf("reading the backup file: %w", err)
	}
	if info.Size() != size {
		return fmt.Errorf("the backup file holds %d bytes, the worker wrote %d", info.Size(), size)
	}
	s.n, s.written = size, &storedSums{sum: sum, list: chunks}
	return nil
}

func (s *fileSink) sums() storedSums {
	if s.written != nil {
		return *s.written
	}
	return digestSums(s.digest)
}

// fanout writes the same bytes to every live target's pipe at once, and drops a target
// whose write fails (its Put failed and closed the pipe).
type fanout struct {
	dests []*dest
}

func (f *fanout) Write(p []byte) (int, error) {
	if len(f.dests) == 1 {
		d := f.dests[0]
		if _, err := d.pw.Write(p); err != nil {
			d.dead = true
			return 0, err
		}
		return len(p), nil
	}
	var wg sync.WaitGroup
	for _, d := range f.dests {
		if d.dead {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.pw.Write(p); err != nil {
				d.dead = true
			}
		}()
	}
	wg.Wait()
	if f.allDead() {
		return 0, firstFailureOrClosed(f.dests)
	}
	return len(p), nil
}

func (f *fanout) allDead() bool {
	for _, d := range f.dests {
		if !d.dead {
			return false
		}
	}
	return true
}

// firstFailureOrClosed is what stops the strategy when no target is left.
func firstFailureOrClosed(dests []*dest) error {
	for _, d := range dests {
		select {
		case <-d.done:
			if d.err != nil {
				return firstFailure(dests)
			}
		default:
		}
	}
	return io.ErrClosedPipe
}

// produce runs the strategy into compression (and encryption): strategy → compression →
// age → out; beside compression, the strategy's Count sees the raw stream.
func produce(ctx context.Context, req BackupRequest, out io.Writer, raw *counter) produced {
	if pk, ok := req.Strategy.(strategy.Packer); ok {
		if p, err := producePacked(ctx, req, pk, out, raw); !errors.Is(err, strategy.ErrNoWorker) {
			return p
		}
	}
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

// producePacked lets the strategy make the stored stream itself (a worker beside the data):
// compressed there, and encrypted there for public keys; a passphrase stays here and
// encrypts what arrives. An error wrapping strategy.ErrNoWorker: nothing was written.
func producePacked(ctx context.Context, req BackupRequest, pk strategy.Packer, out io.Writer, raw *counter) (produced, error) {
	fail := func(err error) (produced, error) { return produced{err: err}, err }
	wr := strategy.WorkRequest{Compression: req.Compression}
	w := out
	var sealed *lazySeal
	if !req.Encrypt.Empty() {
		if keys, public := req.Encrypt.Public(); public {
			wr.Recipients = keys
		} else {
			sealed = &lazySeal{r: req.Encrypt, w: out}
			w = sealed
		}
	}
	source, contents, err := pk.BackupPacked(ctx, req.Container, wr, w, raw.set)
	if errors.Is(err, strategy.ErrNoWorker) {
		return produced{}, err
	}
	if err != nil {
		return fail(err)
	}
	if raw.n == 0 {
		return fail(fmt.Errorf("%s backup of %s: %w; refusing to store it as a success", req.Strategy.Name(), req.Container, ErrEmptyBackup))
	}
	if sealed != nil {
		if err := sealed.Close(); err != nil {
			return fail(fmt.Errorf("encrypting: %w", err))
		}
	}
	return produced{source: source, contents: contents}, nil
}

// lazySeal encrypts what is written, starting the age stream (whose header is written at
// once) on the first write.
type lazySeal struct {
	r  *crypt.Recipients
	w  io.Writer
	wc io.WriteCloser
}

func (l *lazySeal) Write(p []byte) (int, error) {
	if l.wc == nil {
		wc, err := l.r.Encrypt(l.w)
		if err != nil {
			return 0, err
		}
		l.wc = wc
	}
	return l.wc.Write(p)
}

func (l *lazySeal) Close() error {
	if l.wc == nil {
		if _, err := l.Write(nil); err != nil {
			return err
		}
	}
	return l.wc.Close()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

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

// set moves the count to n raw bytes (reported by a worker).
func (c *counter) set(n int64) {
	if n > c.n {
		c.add(int(n - c.n))
	}
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

// taskWatch notices a Swarm task that stopped or was replaced while its backup ran (a
// rolling update, a restart): what was read may be half of one task's data and half of
// another's, so the backup fails instead of being published.
type taskWatch struct {
	c         *containers.Container
	startedAt string
}

func watchTask(c *containers.Container) taskWatch {
	if c == nil || c.Task == nil || c.Scaled != nil || !c.Running {
		return taskWatch{}
	}
	return taskWatch{c: c, startedAt: c.StartedAt}
}

func (w taskWatch) check(ctx context.Context) error {
	if w.c == nil {
		return nil
	}
	now, err := containers.Inspect(ctx, w.c.API(), w.c.ID)
	switch {
	case errors.Is(err, containers.ErrNotFound):
		return fmt.Errorf("%s: swarm task %s was removed during the backup (a rolling update?): nothing was published", w.c, w.c.Task.ID)
	case err != nil:
		return fmt.Errorf("%s: checking that its swarm task still runs: %w", w.c, err)
	case !now.Running || now.StartedAt != w.startedAt:
		return fmt.Errorf("%s: swarm task %s stopped or restarted during the backup (a rolling update, a crash?): nothing was published", w.c, w.c.Task.ID)
	}
	return nil
}
