package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/faults"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// ErrUntouched is wrapped when a restore is refused before anything in the container was
// touched.
var ErrUntouched = errors.New("nothing was restored")

// ErrStarted is wrapped when a restore failed after the strategy had begun to read the data:
// unless the strategy rolls back, some of it may be applied.
var ErrStarted = errors.New("the restore had begun")

// ErrTarget is wrapped when the target could not be read (not a matter of the artifact's
// content): opening it, or a read that failed part-way.
var ErrTarget = errors.New("the target could not be read")

// Verify reads the whole artifact and checks its size and SHA-256 against the manifest.
func Verify(ctx context.Context, t target.Target, m *artifact.Manifest, progress func(int64)) error {
	rc, err := t.Get(ctx, m.Artifact)
	if err != nil {
		return fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget))
	}
	defer rc.Close()
	v := newVerifier(ctx, rc, m, progress)
	_, err = io.Copy(io.Discard, v)
	return err
}

// RestoreRequest says which artifact to restore into which container.
type RestoreRequest struct {
	Target    target.Target
	Manifest  *artifact.Manifest
	Container *containers.Container
	Strategy  strategy.Strategy
	// Trusted: the manifest's signature was verified (strategy.Data.Trusted).
	Trusted bool
	// Allowed are the directories the restore may write into (strategy.Data.Allowed).
	Allowed []string
	// Identities decrypt an encrypted artifact.
	Identities *crypt.Identities
	Progress   func(rawBytes int64)
	// Applying, when set, is called once the artifact is verified, just before the restore
	// begins to change the service: until then a failure or a crash leaves it as it was.
	Applying func(ctx context.Context)
	Log      *slog.Logger
}

// Restore pins the artifact, reads it completely — checking its size and SHA-256, and its
// content when the strategy can (strategy.Checker) — and refuses it before anything in the
// container is touched if anything is wrong. Then it streams the same pinned bytes into the
// strategy, verifying them again: the strategy's reader ends with io.EOF only once the whole
// artifact matched, which is when a transactional strategy commits.
func Restore(ctx context.Context, req RestoreRequest) error {
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := req.Manifest
	if m.Strategy != req.Strategy.Name() {
		return fmt.Errorf("%s is a %s backup and cannot be restored with the %s strategy", m.Artifact, m.Strategy, req.Strategy.Name())
	}
	untouched := func(err error) error {
		return fmt.Errorf("refusing to restore, %s is untouched: %w%w", req.Container, err, errkind.Silent(ErrUntouched))
	}
	pin, err := target.Pin(ctx, req.Target, m.Artifact)
	if err != nil {
		return untouched(fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget)))
	}
	defer pin.Close()
	if size := pin.Size(); size >= 0 && size != m.Size {
		return untouched(fmt.Errorf("%s is %d bytes but its manifest says %d (truncated or replaced): %w", m.Artifact, size, m.Size, artifact.ErrCorrupt))
	}
	if m.Encryption != nil && req.Identities.Empty() {
		return untouched(fmt.Errorf("%s: %w", m.Artifact, noIdentity(m)))
	}
	data := func(r io.Reader) strategy.Data {
		return strategy.Data{Reader: r, Size: m.RawSize, Source: m.Source, Trusted: req.Trusted, Allowed: req.Allowed}
	}
	// The chunk list (format 2): every chunk the strategy is given is verified first.
	list, err := readChunkList(ctx, req.Target, m)
	if err != nil {
		return untouched(err)
	}

	// One pass, staged: unpacked beside the data while verified, moved into place after.
	noWorker := false
	if st, ok := req.Strategy.(strategy.Stager); ok {
		err := restoreStaged(ctx, req, pin, list, st, data, untouched)
		if !errors.Is(err, strategy.ErrNoWorker) && !errors.Is(err, strategy.ErrNoRoom) {
			return err
		}
		noWorker = errors.Is(err, strategy.ErrNoWorker)
	}

	// One pass, verified chunk by chunk, into a strategy that commits only at the end.
	if op, ok := req.Strategy.(strategy.OnePass); ok && list != nil && op.OnePass(data(nil)) {
		return restoreOnce(ctx, req, pin, list, data, untouched)
	}

	// Pass 1: the whole artifact, before anything is touched; meanwhile, what the restore
	// needs is made ready (a worker container, waiting).
	warm := warmRestore(ctx, req, data, noWorker)
	defer func() { warm()() }()
	log.Info("verifying the artifact", "key", m.Artifact, "size", m.Size)
	verified, err := verifyPinned(ctx, pin, m, req.Identities, checkOf(ctx, req, data))
	if err != nil {
		return untouched(err)
	}
	if list == nil {
		list = verified // format 1: pass 2 is held to what pass 1 read, chunk by chunk
	}
	log.Info("artifact verified", "sha256", artifact.ShortSHA(m.SHA256))
	warm()
	faults.Point(ctx, "restore-verified")
	if req.Applying != nil {
		req.Applying(ctx)
	}
	// Pass 2: the same bytes, into the container.
	return apply(ctx, req, pin, list, data, noWorker)
}

// checkOf is what pass 1 does with the raw stream besides verifying it: the strategy's Check,
// or, for an encrypted backup, reading it to the end (every chunk authenticated); nil: nothing.
func checkOf(ctx context.Context, req RestoreRequest, data func(io.Reader) strategy.Data) func(io.Reader) error {
	if chk, ok := req.Strategy.(strategy.Checker); ok {
		return func(raw io.Reader) error { return chk.Check(ctx, req.Container, data(raw)) }
	}
	if req.Manifest.Encryption != nil {
		return func(raw io.Reader) error { _, err := io.Copy(io.Discard, raw); return err }
	}
	return nil
}

// warmRestore starts making ready what the restore needs (strategy.Warmer) and returns what
// waits for it once: its result releases what the restore did not take.
func warmRestore(ctx context.Context, req RestoreRequest, data func(io.Reader) strategy.Data, noWorker bool) func() (release func()) {
	w, ok := req.Strategy.(strategy.Warmer)
	if !ok || noWorker {
		return func() (release func()) { return func() {} }
	}
	done := make(chan func(), 1)
	go func() { done <- w.WarmRestore(ctx, req.Container, data(nil)) }()
	return sync.OnceValue(func() func() { return <-done })
}

// apply is pass 2: the pinned bytes, verified again as they are read, into the strategy
// (packed, through a worker, when it can).
func apply(ctx context.Context, req RestoreRequest, pin target.Pinned, list []byte, data func(io.Reader) strategy.Data, noWorker bool) error {
	m := req.Manifest
	if err := req.Container.Refresh(ctx); err != nil {
		return err
	}
	if pk, ok := req.Strategy.(strategy.Packer); ok && !noWorker {
		if err := restorePacked(ctx, req, pin, list, pk, data); !errors.Is(err, strategy.ErrNoWorker) {
			return err
		}
	}
	rc, err := pin.Open(ctx)
	if err != nil {
		return fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget))
	}
	defer rc.Close()
	v := newChunkVerifier(ctx, rc, m, list, nil)
	raw, err := newRawReader(v, m, req.Identities, req.Progress, ctx)
	if err != nil {
		return err
	}
	defer raw.Close()
	if err := req.Strategy.Restore(ctx, req.Container, data(raw)); err != nil {
		if raw.counted.n > 0 {
			return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
		}
		return err
	}
	// A strategy that stopped reading early (nothing left it needed): the rest must still
	// be the verified bytes.
	if err := raw.finish(); err != nil {
		return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
	}
	faults.Point(ctx, "restore-applied")
	return nil
}

// restoreStaged reads the artifact once: the strategy unpacks it beside the data while it is
// verified, and moves it into place only once all of it matched. A failure before that
// leaves the service untouched; an error wrapping strategy.ErrNoWorker or strategy.ErrNoRoom
// says to restore another way (nothing was changed).
func restoreStaged(ctx context.Context, req RestoreRequest, pin target.Pinned, list []byte, st strategy.Stager, data func(io.Reader) strategy.Data, untouched func(error) error) error {
	m, log := req.Manifest, req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc, err := pin.Open(ctx)
	if err != nil {
		return untouched(fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget)))
	}
	defer rc.Close()
	log.Info("restoring beside the data while the artifact is verified", "key", m.Artifact, "size", m.Size)
	v := newChunkVerifier(ctx, rc, m, list, nil)
	plain, err := open(v, m, req.Identities)
	if err != nil {
		return untouched(err)
	}
	raw := &counter{onAdd: req.Progress, fault: func(int64) { faults.Point(ctx, "restore-stream") }}
	pr := &packedReader{v: v, r: plain, ctx: ctx}
	var in io.Reader = pr
	if pf, ok := pin.(target.PinnedFile); ok && m.Encryption == nil {
		// A worker on this host reads the file itself; what it read is checked here.
		in = &fileSource{packedReader: pr, f: pf.File(), list: list}
	}
	err = st.RestoreStaged(ctx, req.Container, data(in), m.Compression, raw.set, func(ctx context.Context) {
		log.Info("artifact verified", "sha256", artifact.ShortSHA(m.SHA256))
		faults.Point(ctx, "restore-verified")
		if req.Applying != nil {
			req.Applying(ctx)
		}
	})
	switch {
	case err == nil:
		faults.Point(ctx, "restore-applied")
		return nil
	case errors.Is(err, strategy.ErrNoWorker), errors.Is(err, strategy.ErrNoRoom):
		return err
	case errors.Is(err, strategy.ErrUnapplied):
		// The checksum comes first: a damaged artifact is reported as damaged.
		if ferr := pr.finish(); ferr != nil {
			return untouched(ferr)
		}
		return untouched(err)
	}
	return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
}

// restoreOnce reads the artifact once into a strategy.OnePass: each chunk is verified before
// the strategy sees it, and the strategy commits only once its reader ended with io.EOF, so a
// damaged or replaced artifact is rolled back and leaves the service as it was.
func restoreOnce(ctx context.Context, req RestoreRequest, pin target.Pinned, list []byte, data func(io.Reader) strategy.Data, untouched func(error) error) error {
	m, log := req.Manifest, req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("restoring while each chunk of the artifact is verified", "key", m.Artifact, "size", m.Size, "chunks", m.Chunks.Count)
	if err := req.Container.Refresh(ctx); err != nil {
		return err
	}
	// The chunk list is verified; the artifact is read from here on, pinned as it was.
	faults.Point(ctx, "restore-verified")
	rc, err := pin.Open(ctx)
	if err != nil {
		return untouched(fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget)))
	}
	defer rc.Close()
	v := newChunkVerifier(ctx, rc, m, list, nil)
	raw, err := newRawReader(v, m, req.Identities, req.Progress, ctx)
	if err != nil {
		return untouched(err)
	}
	defer raw.Close()
	if req.Applying != nil {
		req.Applying(ctx)
	}
	if err := req.Strategy.Restore(ctx, req.Container, data(raw)); err != nil {
		if ferr := v.failure(); ferr != nil {
			// Rolled back by the strategy: the artifact's fault, nothing applied.
			return untouched(ferr)
		}
		return err
	}
	if err := raw.finish(); err != nil {
		return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
	}
	log.Info("artifact verified", "sha256", artifact.ShortSHA(m.SHA256))
	faults.Point(ctx, "restore-applied")
	return nil
}

// restorePacked hands the strategy the compressed stream (decrypted here) to unpack beside the
// data; its io.EOF comes only once the stored bytes matched. An error wrapping
// strategy.ErrNoWorker: nothing was read into the container.
func restorePacked(ctx context.Context, req RestoreRequest, pin target.Pinned, list []byte, pk strategy.Packer, data func(io.Reader) strategy.Data) error {
	m := req.Manifest
	rc, err := pin.Open(ctx)
	if err != nil {
		return fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget))
	}
	defer rc.Close()
	v := newChunkVerifier(ctx, rc, m, list, nil)
	plain, err := open(v, m, req.Identities)
	if err != nil {
		return err
	}
	raw := &counter{onAdd: req.Progress, fault: func(int64) { faults.Point(ctx, "restore-stream") }}
	pr := &packedReader{v: v, r: plain, ctx: ctx}
	err = pk.RestorePacked(ctx, req.Container, data(pr), m.Compression, raw.set)
	if errors.Is(err, strategy.ErrNoWorker) {
		return err
	}
	if err != nil {
		if pr.n > 0 {
			return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
		}
		return err
	}
	if err := pr.finish(); err != nil {
		return fmt.Errorf("%w%w", err, errkind.Silent(ErrStarted))
	}
	faults.Point(ctx, "restore-applied")
	return nil
}

// packedReader gives the stored stream decrypted but still compressed; its io.EOF comes only
// after the verifier's.
type packedReader struct {
	v     *verifier
	r     io.Reader
	ctx   context.Context
	n     int64
	ended bool
}

func (p *packedReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if err == nil {
		return n, nil
	}
	if ferr := p.finish(); ferr != nil {
		return n, ferr
	}
	if !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("decrypting %s: %w", p.v.m.Artifact, err)
	}
	return n, io.EOF
}

// finish reads what is left of the stored bytes and reports whether all matched (again, when
// called again).
func (p *packedReader) finish() error {
	if !p.ended {
		p.ended = true
		if _, err := io.Copy(io.Discard, p.v); err != nil {
			return err
		}
	}
	return p.v.failure()
}

// fileSource is a packedReader whose stored stream is a local file, not encrypted
// (strategy.FileSource): a worker given its descriptor reads it instead, and Check holds what
// it read to the manifest as the verifier does.
type fileSource struct {
	*packedReader
	f    *os.File
	list []byte // the verified chunk list (nil for format 1)
}

func (s *fileSource) File() *os.File { return s.f }

func (s *fileSource) Bounds() (int64, *artifact.Chunks, []byte) {
	m := s.v.m
	if s.list == nil {
		return m.Size, nil, nil
	}
	c := m.Chunks
	if c == nil {
		c = artifact.DescribeList(s.list)
	}
	return m.Size, c, s.list
}

func (s *fileSource) Check(size int64, sum []byte) error {
	if s.n != 0 || s.ended {
		return errors.New("the artifact was read twice")
	}
	s.ended = true
	return s.v.settle(size, sum)
}

// verifyPinned reads the pinned artifact once: the stored bytes are hashed while check (if
// any) reads them decompressed; whatever check leaves is read too, and size and SHA-256 must
// match.
//
// It returns the chunk list of the bytes it verified: for an artifact without one of its own
// (format 1), what a later read of the same artifact is held to chunk by chunk — so that bytes
// changed on the target after this pass never reach a strategy either.
func verifyPinned(ctx context.Context, pin target.Pinned, m *artifact.Manifest, ids *crypt.Identities, check func(io.Reader) error) ([]byte, error) {
	rc, err := pin.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w%w", m.Artifact, err, errkind.Silent(ErrTarget))
	}
	defer rc.Close()
	v := newVerifier(ctx, rc, m, nil)
	if check == nil {
		if _, err := io.Copy(io.Discard, v); err != nil {
			return nil, err
		}
		return v.list(), nil
	}
	plain, err := open(v, m, ids)
	if err != nil {
		return nil, err
	}
	zr, err := m.Compression.NewReader(plain)
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %w", m.Artifact, err)
	}
	checkErr := check(&ctxReader{ctx, zr})
	// The decompressor reads ahead on goroutines of its own: stop it before reading on.
	zr.Close()
	if checkErr != nil && !errors.Is(checkErr, artifact.ErrCorrupt) {
		// The checksum comes first: a damaged artifact is reported as damaged.
		if _, err := io.Copy(io.Discard, v); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not a backup this tool can restore safely: %w", m.Artifact, checkErr)
	}
	if _, err := io.Copy(io.Discard, v); err != nil {
		return nil, err
	}
	return v.list(), checkErr
}

// verifier reads the stored bytes, hashing them, and ends with io.EOF only when their size
// and SHA-256 are the manifest's; otherwise with an error wrapping ErrCorrupt. Given a chunk
// list, it passes a chunk on only once it matched (artifact.ChunkReader); otherwise it also
// cuts the bytes it read into chunks, so that once all of them matched the whole SHA-256
// (pass 1), later reads of the same artifact can be verified chunk by chunk (list).
type verifier struct {
	mu       sync.Mutex // a decompressor reads on goroutines of its own
	ctx      context.Context
	r        io.Reader
	m        *artifact.Manifest
	d        *artifact.Digest
	n        int64
	progress func(int64)
	err      error
	cr       *artifact.ChunkReader // with a chunk list
}

func newVerifier(ctx context.Context, r io.Reader, m *artifact.Manifest, progress func(int64)) *verifier {
	return &verifier{ctx: ctx, r: r, m: m, d: artifact.NewDigest(), progress: progress}
}

// newChunkVerifier verifies r chunk by chunk against the verified chunk list (readChunkList,
// or verifier.list of an earlier whole read); with no list, it verifies the whole artifact's
// checksum at its end.
func newChunkVerifier(ctx context.Context, r io.Reader, m *artifact.Manifest, list []byte, progress func(int64)) *verifier {
	v := newVerifier(ctx, r, m, progress)
	if list != nil {
		c := m.Chunks
		if c == nil {
			c = artifact.DescribeList(list)
		}
		v.cr = artifact.NewChunkReader(r, m.Size, c, list)
	}
	return v
}

// list is the chunk list of what the verifier read, once it all matched the manifest's
// SHA-256 (nil before, or when it read against a list).
func (v *verifier) list() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cr != nil || !errors.Is(v.err, io.EOF) {
		return nil
	}
	list, _ := v.d.List()
	return list
}

func (v *verifier) Read(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return 0, v.err
	}
	if err := v.ctx.Err(); err != nil {
		v.err = err
		return 0, err
	}
	if v.cr != nil {
		return v.readChunked(p)
	}
	n, err := v.r.Read(p)
	v.d.Write(p[:n])
	v.n += int64(n)
	if v.progress != nil && n > 0 {
		v.progress(v.n)
	}
	if v.n > v.m.Size {
		v.err = fmt.Errorf("%s is longer than the %d bytes its manifest says (replaced or appended to): %w", v.m.Artifact, v.m.Size, artifact.ErrCorrupt)
		return n, v.err
	}
	switch {
	case errors.Is(err, io.EOF):
		v.err = v.check()
		return n, v.err
	case err != nil:
		v.err = fmt.Errorf("reading %s: %w%w", v.m.Artifact, err, errkind.Silent(ErrTarget))
		return n, v.err
	}
	return n, nil
}

// readChunked reads through the chunk reader: verified bytes only.
func (v *verifier) readChunked(p []byte) (int, error) {
	n, err := v.cr.Read(p)
	if read := v.cr.ReadBytes(); read != v.n {
		v.n = read
		if v.progress != nil {
			v.progress(v.n)
		}
	}
	var re *artifact.ReadError
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.As(err, &re):
		err = fmt.Errorf("reading %s: %w%w", v.m.Artifact, re.Err, errkind.Silent(ErrTarget))
	default:
		err = fmt.Errorf("%s: %w", v.m.Artifact, err)
	}
	v.err = err
	return n, err
}

// readChunkList reads the artifact's chunk list and checks it against the manifest; nil for
// an artifact without one (format 1).
func readChunkList(ctx context.Context, t target.Target, m *artifact.Manifest) ([]byte, error) {
	if m.Chunks == nil {
		return nil, nil
	}
	key := artifact.ChunksKey(m.Artifact)
	rc, err := t.Get(ctx, key)
	if err != nil {
		if errors.Is(err, target.ErrNotExist) {
			return nil, fmt.Errorf("the chunk list %s of %s is missing: %w", key, m.Artifact, artifact.ErrCorrupt)
		}
		return nil, fmt.Errorf("opening %s: %w%w", key, err, errkind.Silent(ErrTarget))
	}
	defer rc.Close()
	list, err := io.ReadAll(io.LimitReader(rc, m.Chunks.ListSize()+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w%w", key, err, errkind.Silent(ErrTarget))
	}
	if err := m.Chunks.CheckList(list); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", m.Artifact, err, artifact.ErrCorrupt)
	}
	return list, nil
}

// failure is why the stored bytes did not match, once read (nil: they did, or not read yet).
func (v *verifier) failure() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil && !errors.Is(v.err, io.EOF) {
		return v.err
	}
	return nil
}

func (v *verifier) check() error {
	return v.verdict(v.n, v.d.Sum())
}

// verdict is io.EOF when n bytes whose SHA-256 is sum are the artifact, else why not.
func (v *verifier) verdict(n int64, sum []byte) error {
	if n > v.m.Size {
		return fmt.Errorf("%s is longer than the %d bytes its manifest says (replaced or appended to): %w", v.m.Artifact, v.m.Size, artifact.ErrCorrupt)
	}
	if n != v.m.Size {
		return fmt.Errorf("%s is %d bytes but its manifest says %d (truncated or replaced): %w", v.m.Artifact, n, v.m.Size, artifact.ErrCorrupt)
	}
	if got := artifact.HexSum(sum); got != v.m.SHA256 {
		return fmt.Errorf("%s has sha256 %s but its manifest says %s (damaged or tampered with): %w", v.m.Artifact, got, v.m.SHA256, artifact.ErrCorrupt)
	}
	return io.EOF
}

// settle records what someone else read of the stored bytes (n bytes whose SHA-256 is sum):
// nil when they are the artifact, else why not (also failure's from now on).
func (v *verifier) settle(n int64, sum []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n, v.err = n, v.verdict(n, sum)
	if errors.Is(v.err, io.EOF) {
		return nil
	}
	return v.err
}

// rawReader decompresses the verified stream; its io.EOF comes only after the verifier's,
// so a strategy that commits at EOF commits verified bytes only.
type rawReader struct {
	v       *verifier
	zr      io.ReadCloser
	counted *counter
	ctx     context.Context
	ended   bool
	closed  bool
}

func newRawReader(v *verifier, m *artifact.Manifest, ids *crypt.Identities, progress func(int64), ctx context.Context) (*rawReader, error) {
	plain, err := open(v, m, ids)
	if err != nil {
		return nil, err
	}
	zr, err := m.Compression.NewReader(plain)
	if err != nil {
		if errors.Is(err, artifact.ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("decompressing %s: %w", m.Artifact, err)
	}
	return &rawReader{v: v, zr: zr, ctx: ctx, counted: &counter{onAdd: progress, fault: func(int64) { faults.Point(ctx, "restore-stream") }}}, nil
}

func (r *rawReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.zr.Read(p)
	r.counted.add(n)
	if errors.Is(err, io.EOF) {
		// The data ends: the stored bytes must end too, and match.
		if ferr := r.finish(); ferr != nil {
			return n, ferr
		}
		return n, io.EOF
	}
	if err != nil {
		// Prefer the verifier's reason (damaged, replaced, unreadable) to the decompressor's
		// view of it.
		if ferr := r.finish(); ferr != nil {
			return n, ferr
		}
		return n, fmt.Errorf("decompressing %s: %w", r.v.m.Artifact, err)
	}
	return n, nil
}

// finish reads what is left of the stored bytes and reports whether all matched.
func (r *rawReader) finish() error {
	if r.ended {
		return nil
	}
	r.ended = true
	// The decompressor reads ahead on goroutines of its own: stop it before reading on.
	r.Close()
	if _, err := io.Copy(io.Discard, r.v); err != nil {
		return err
	}
	if r.v.err != nil && !errors.Is(r.v.err, io.EOF) {
		return r.v.err
	}
	return nil
}

func (r *rawReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.zr.Close()
}

// open decrypts the stored bytes when the artifact is encrypted.
func open(v *verifier, m *artifact.Manifest, ids *crypt.Identities) (io.Reader, error) {
	if m.Encryption == nil {
		return v, nil
	}
	plain, err := ids.Decrypt(v, m.Encryption.Recipients)
	if err != nil {
		if v.err != nil && !errors.Is(v.err, io.EOF) {
			return nil, v.err // damaged or unreadable, not a matter of keys
		}
		return nil, fmt.Errorf("%s: %w", m.Artifact, err)
	}
	return plain, nil
}

// noIdentity says what a restore of an encrypted artifact needs.
func noIdentity(m *artifact.Manifest) error {
	return fmt.Errorf("it is encrypted (age) for %s: give an identity that can decrypt it (docker backup restore -i FILE, or DOCKER_BACKUP_AGE_IDENTITY_FILE on the sidecar): %w",
		strings.Join(m.Encryption.Recipients, ", "), crypt.ErrNoIdentity)
}

// ctxReader stops reading when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
