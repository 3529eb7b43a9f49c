//go:build linux

package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker/extract"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"github.com/docker-backup/docker-backup/internal/writeback"
	"golang.org/x/sys/unix"
)

// Serve is the worker's main: it reads one Request from in, then backs up (the stored stream
// to out) or restores (the compressed stream, in frames, from the rest of in) — or does
// either over the Request's data socket — and reports progress and the result as JSON lines
// (Report) on reports. It returns the process's exit code.
//
// After its final report (done or failed) it waits for in to end before it returns: its
// caller ends it once it has read that report, so the worker does not exit, and the engine
// does not close its output, while the report may still be on the way (the engine can lose
// the last bytes a container wrote as it exits). A caller gone ends it too; ackWait bounds
// the wait.
func Serve(ctx context.Context, in io.Reader, out, reports io.Writer) int {
	br := bufio.NewReaderSize(in, 1<<20)
	code := serve(ctx, br, out, &reporter{w: reports})
	awaitEnd(ctx, br, ackWait)
	return code
}

// ackWait bounds how long the worker waits, after its final report, for its input to end.
const ackWait = 10 * time.Second

// awaitEnd reads r to its end (or an error), for at most d or until ctx is done.
func awaitEnd(ctx context.Context, r io.Reader, d time.Duration) {
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, r)
		close(ended)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
	case <-ctx.Done():
	}
}

func serve(ctx context.Context, br *bufio.Reader, out io.Writer, rep *reporter) int {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return rep.fail(fmt.Errorf("reading the request: %w", err))
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return rep.fail(fmt.Errorf("reading the request: %w", err))
	}
	var data io.Reader = br
	var given *os.File // the file of Request.File, when it can be used
	if req.Socket != "" {
		conn, err := net.Dial("unix", req.Socket)
		if err != nil {
			return rep.fail(fmt.Errorf("connecting to the data socket: %w", err))
		}
		defer conn.Close()
		data, out = conn, conn
		// Only a backup writes a given file, only a staged restore reads one.
		if req.File && (req.Op == OpBackup || req.Op == OpRestore && req.Staged) {
			f, err := receiveFile(conn.(*net.UnixConn), req.Op == OpBackup)
			if err != nil {
				rep.send(Report{Log: fmt.Sprintf("the given file cannot be used here (%v): the stream goes over the socket", err)})
			} else {
				defer f.Close()
				given = f
			}
			if req.Op == OpRestore {
				answer := byte(FileRefused)
				if given != nil {
					answer = FileTaken
				}
				if _, err := conn.Write([]byte{answer}); err != nil {
					return rep.fail(fmt.Errorf("answering on the data socket: %w", err))
				}
			}
		}
	}
	stop := rep.every(time.Second / 2)
	defer stop()
	switch req.Op {
	case OpBackup:
		if req.Incremental {
			err = backupIncremental(ctx, req, data, out, rep)
			break
		}
		if given != nil {
			// Nothing comes on the socket while the file is written: its end is the caller's
			// (gone, killed), which ends the backup at once.
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				_, _ = data.Read(make([]byte, 1))
				cancel()
			}()
			fo := &fileOut{ctx: ctx, f: given, wb: writeback.New(given), digest: artifact.NewDigest()}
			out, rep.file = fo, fo
		}
		err = backup(ctx, req, out, rep)
	case OpRestore:
		err = restore(ctx, req, data, given, rep)
	case OpCount:
		err = count(ctx, req, rep)
	case OpMeasure:
		err = measure(ctx, req, rep)
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	stop()
	if err != nil {
		return rep.fail(err)
	}
	return 0
}

// count digests the paths as backup does (leaving out what it left out), reading every file,
// and sends only its report.
func count(ctx context.Context, req Request, rep *reporter) error {
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return err
	}
	rep.excluded = len(excl.Patterns())
	contents, err := tree.Archive(ctx, req.Paths, req.Mounts, excl, &countingWriter{w: io.Discard, n: &rep.raw})
	if err != nil {
		return err
	}
	rep.done(contents)
	return nil
}

// measure adds up the paths as a backup would walk them (Measure), and sends only its report.
func measure(ctx context.Context, req Request, rep *reporter) error {
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return err
	}
	m, err := tree.Measure(ctx, req.Paths, req.Mounts, excl)
	if err != nil {
		return err
	}
	rep.write(Report{Done: true, Measured: m, Excluded: len(excl.Patterns())}, true)
	return nil
}

// written is what a backup wrote into a file it was given: its size, SHA-256 and chunk list
// (artifact.Digest).
type Written struct {
	Size   int64
	SHA256 []byte
	Chunks []byte
}

// backupRoots is a worker's backup made in the calling process (the plugin reading volumes in
// place): it archives roots and writes the stored stream — compressed, encrypted for
// recipients — to out, or into file when one is given, and then says what it wrote there;
// progress, when set, gets the raw bytes so far.
func BackupRoots(ctx context.Context, roots []tree.Root, mounts []string, excl *exclude.Set, comp artifact.Compression, recipients []string, out io.Writer, file *os.File, progress func(int64)) (*artifact.Contents, *Written, error) {
	var raw atomic.Int64
	stop := every(time.Second/2, func() {
		if progress != nil {
			progress(raw.Load())
		}
	})
	defer stop()
	var fo *fileOut
	if file != nil {
		fo = &fileOut{ctx: ctx, f: file, wb: writeback.New(file), digest: artifact.NewDigest()}
		out = fo
	}
	contents, err := pack(comp, recipients, out, &raw, func(w io.Writer) (*artifact.Contents, error) {
		return tree.ArchiveRoots(ctx, roots, mounts, excl, w)
	})
	if err != nil {
		return nil, nil, err
	}
	stop()
	if progress != nil {
		progress(raw.Load())
	}
	if fo == nil {
		return contents, nil, nil
	}
	list, _ := fo.digest.List()
	return contents, &Written{Size: fo.wb.Written(), SHA256: fo.digest.Sum(), Chunks: list}, nil
}

func backup(ctx context.Context, req Request, out io.Writer, rep *reporter) error {
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return err
	}
	rep.excluded = len(excl.Patterns())
	contents, err := pack(req.Compression, req.Recipients, out, &rep.raw, func(w io.Writer) (*artifact.Contents, error) {
		return tree.Archive(ctx, req.Paths, req.Mounts, excl, w)
	})
	if err != nil {
		return err
	}
	rep.done(contents)
	return nil
}

// pack writes the stored stream of what archive writes to out: compressed, and encrypted for
// recipients when there are any; raw counts the archive's bytes as they come.
func pack(comp artifact.Compression, recipients []string, out io.Writer, raw *atomic.Int64, archive func(io.Writer) (*artifact.Contents, error)) (*artifact.Contents, error) {
	bw := bufio.NewWriterSize(out, 256<<10)
	sealed := io.WriteCloser(nopCloser{bw})
	if len(recipients) > 0 {
		var rs crypt.Recipients
		if err := rs.Add(recipients...); err != nil {
			return nil, err
		}
		var err error
		if sealed, err = rs.Encrypt(bw); err != nil {
			return nil, err
		}
	}
	zw, err := comp.NewWriter(sealed)
	if err != nil {
		return nil, err
	}
	contents, err := archive(&countingWriter{w: zw, n: raw})
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("compressing: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	if err := sealed.Close(); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("sending the backup: %w", err)
	}
	return contents, nil
}

func restore(ctx context.Context, req Request, in io.Reader, file *os.File, rep *reporter) error {
	// What a restore cut by a power cut left goes first.
	extract.SweepStaging(req.Mounts)
	if req.Staged {
		return restoreStaged(ctx, req, in, file, rep)
	}
	if req.Socket == "" {
		// On the worker's input the stream comes in frames: the input's end is the caller's
		// acknowledgement of the final report (see Serve).
		in = &frameReader{r: in}
	}
	zr, err := req.Compression.NewReader(in)
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	defer zr.Close()
	raw := &countingReader{r: zr, n: &rep.raw, limit: req.Size}
	x := extract.New(req.Paths, req.Mounts, req.Trusted, nil)
	defer x.Close()
	if err := x.Run(ctx, raw); err != nil {
		return err
	}
	rep.warn(x.Dropped())
	// What follows the archive's end marker is read too: the caller's stream ends only
	// once its checksum matched.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return fmt.Errorf("reading the end of the backup: %w", err)
	}
	// Done means on disk, as for a staged restore (the write-back started as files were
	// written: little is left to do here).
	if err := syncMounts(req.Mounts); err != nil {
		return err
	}
	rep.done(nil)
	return nil
}

// syncMounts writes the file systems of the mounts to disk (syncfs). A mount that is neither
// a directory nor a regular file (a socket, a device: opening one may do something) is passed
// over.
func syncMounts(mounts []string) error {
	for _, m := range mounts {
		fi, err := os.Stat(m)
		if err != nil {
			return fmt.Errorf("writing the restored files in %s to disk: %w", m, err)
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			continue
		}
		fd, err := unix.Open(m, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("writing the restored files in %s to disk: %w", m, err)
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("writing the restored files in %s to disk: %w", m, err)
		}
	}
	return nil
}

// restoreStaged unpacks the framed stream into staging directories beside the data, says so,
// and waits for the verdict: it moves the staged files into place only when told to commit.
// On any other outcome (an error, a verdict to abort, the connection lost) it removes them,
// and nothing in place was changed.
//
// Given the artifact's file (Request.File), it reads the stream from there, to its end, and
// reports its size and SHA-256 with Staged: the caller checks them before its verdict.
func restoreStaged(ctx context.Context, req Request, in io.Reader, file *os.File, rep *reporter) error {
	room := req.Size
	if room == 0 {
		room = req.Room
	}
	st, err := extract.NewStaging(req.Mounts, room)
	if err != nil {
		return err
	}
	defer st.Remove()
	br := bufio.NewReaderSize(in, 1<<20)
	x := extract.New(req.Paths, req.Mounts, req.Trusted, st)
	defer x.Close()
	var stream io.Reader = &frameReader{r: br}
	var fin *fileIn
	readVerdict := func() (byte, error) { return br.ReadByte() }
	isStaged := func() {}
	if file != nil {
		r, err := boundedFile(req, file)
		if err != nil {
			return err
		}
		fin = &fileIn{r: r, hash: sha256.New()}
		stream = fin
		// Nothing else comes on the socket: what comes before the files are staged (the caller
		// called the restore off, or is gone) ends the unpacking at once.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		var staged atomic.Bool
		verdicts := make(chan byte, 1)
		go func() {
			b, err := br.ReadByte()
			if err != nil {
				b = 0
			}
			if !staged.Load() {
				cancel()
			}
			verdicts <- b
		}()
		isStaged = func() { staged.Store(true) }
		readVerdict = func() (byte, error) {
			select {
			case b := <-verdicts:
				return b, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	if err := unpack(ctx, req, stream, x, rep); err != nil {
		if ctx.Err() != nil {
			return errors.New("the restore was called off: the staged files were removed, nothing was moved into place")
		}
		return err
	}
	rep.warn(x.Dropped())
	// On disk before anything is moved into place (while the service still runs): a power
	// cut after the commit cannot leave files the restore had not written yet.
	if err := st.Sync(); err != nil {
		return err
	}
	staged := Report{Raw: rep.raw.Load(), Staged: true}
	if fin != nil {
		staged.File, staged.Size, staged.SHA256 = true, fin.n, hex.EncodeToString(fin.hash.Sum(nil))
	}
	isStaged()
	rep.send(staged)
	verdict, err := readVerdict()
	if err != nil || verdict != VerdictCommit {
		return errors.New("the restore was called off: the staged files were removed, nothing was moved into place")
	}
	if err := x.Commit(); err != nil {
		return err
	}
	if err := st.Sync(); err != nil {
		return err
	}
	// What was replaced went into the staging directories: removed once the service runs
	// again (the caller waits for the worker's end, not for this to start it).
	rep.send(Report{Raw: rep.raw.Load(), Committed: true})
	st.Remove()
	rep.done(nil)
	return nil
}

// boundedFile reads the artifact's file no further than its signed size and, given its
// verified chunk list, a chunk only once it matched: what the worker unpacks from a file
// changed on the target is what was signed, and never more than the backup holds.
func boundedFile(req Request, file *os.File) (io.Reader, error) {
	if req.Stored <= 0 {
		return nil, errors.New("the request names no size of the backup file")
	}
	// One byte more than the artifact: a longer file is refused, not cut.
	section := io.NewSectionReader(file, 0, req.Stored+1)
	if req.Chunks == nil {
		return &sizedReader{r: section, size: req.Stored}, nil
	}
	c := &artifact.Chunks{Size: req.ChunkSize, Count: int64(len(req.Chunks) / sha256.Size)}
	if c.Size <= 0 || len(req.Chunks)%sha256.Size != 0 || c.Count != (req.Stored+c.Size-1)/c.Size {
		return nil, fmt.Errorf("the request's chunk list does not describe a backup of %d bytes", req.Stored)
	}
	return artifact.NewChunkReader(section, req.Stored, c, req.Chunks), nil
}

// sizedReader fails once more than size bytes come.
type sizedReader struct {
	r    io.Reader
	size int64
	n    int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.size {
		return n, fmt.Errorf("the backup file is longer than the %d bytes its manifest says: %w", s.size, artifact.ErrCorrupt)
	}
	return n, err
}

// unpack decompresses the stream (up to its last frame) into x.
func unpack(ctx context.Context, req Request, frames io.Reader, x *extract.Extractor, rep *reporter) error {
	zr, err := req.Compression.NewReader(frames)
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	defer zr.Close()
	raw := &countingReader{r: zr, n: &rep.raw, limit: req.Size}
	if err := x.Run(ctx, raw); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return fmt.Errorf("reading the end of the backup: %w", err)
	}
	// The last frame: the sender's stream ended as it should.
	if _, err := io.Copy(io.Discard, frames); err != nil {
		return fmt.Errorf("reading the end of the backup: %w", err)
	}
	return nil
}

// reporter writes Report lines; progress comes from a ticker, so it is safe for concurrent use.
type reporter struct {
	mu    sync.Mutex
	w     io.Writer
	ended bool // the final report (done or failed) was sent: nothing may follow it
	raw   atomic.Int64
	file  *fileOut // the file a backup writes (Request.File)
	// excluded is how many exclusion patterns a backup applied (Report.Excluded).
	excluded int
}

// send sends a report that is not the last (progress, a log line, a step done).
func (r *reporter) send(rep Report) { r.write(rep, false) }

// warn sends a warning for the user, unless w is empty.
func (r *reporter) warn(w string) {
	if w != "" {
		r.send(Report{Raw: r.raw.Load(), Warn: w})
	}
}

// write sends rep unless the final report went already; final marks rep as that one. A
// progress tick racing with the end cannot come after it (a caller that took the last report
// it read for the outcome would see a success as a worker ending without one).
func (r *reporter) write(rep Report, final bool) {
	b, _ := json.Marshal(rep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = final
	_, _ = r.w.Write(append(b, '\n'))
}

func (r *reporter) fail(err error) int {
	rep := Report{Raw: r.raw.Load(), Error: err.Error()}
	if errors.Is(err, extract.ErrNoRoom) {
		rep.Code = CodeNoRoom
	}
	r.write(rep, true)
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}

func (r *reporter) done(c *artifact.Contents) {
	rep := Report{Raw: r.raw.Load(), Done: true, Contents: c, Excluded: r.excluded}
	if r.file != nil {
		list, _ := r.file.digest.List()
		rep.File, rep.Size, rep.SHA256, rep.Chunks = true, r.file.wb.Written(), hex.EncodeToString(r.file.digest.Sum()), list
	}
	r.write(rep, true)
}

// every sends progress every d until the returned stop is called (once or more).
func (r *reporter) every(d time.Duration) (stop func()) {
	return every(d, func() { r.send(Report{Raw: r.raw.Load()}) })
}

// every calls f every d until the returned stop is called (once or more); f is not running
// once stop returned.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// fileOut is the file a backup writes the stored stream into, and its SHA-256.
type fileOut struct {
	ctx    context.Context
	f      *os.File
	wb     *writeback.Writer
	digest *artifact.Digest
}

func (o *fileOut) Write(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := o.wb.Write(p)
	o.digest.Write(p[:n])
	if err != nil {
		return n, fmt.Errorf("writing the backup file: %w", err)
	}
	return n, nil
}

// fileIn reads the artifact's file (a staged restore's), hashing what it reads.
type fileIn struct {
	r    io.Reader
	hash hash.Hash
	n    int64
}

func (i *fileIn) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	i.hash.Write(p[:n])
	i.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("reading the backup file: %w", err)
	}
	return n, err
}

// receiveFile takes the descriptor of a file from the socket's first message, and checks that
// it is a regular file this process may use: read, or (write) write into, then empty.
func receiveFile(conn *net.UnixConn, write bool) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("reading the descriptor: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		fds, _ = unix.ParseUnixRights(&msgs[0])
	}
	if n != 1 || len(fds) != 1 || flags&unix.MSG_CTRUNC != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("no descriptor came")
	}
	f := os.NewFile(uintptr(fds[0]), "backup file")
	info, err := f.Stat()
	switch {
	case err != nil:
	case !info.Mode().IsRegular():
		err = errors.New("not a regular file")
	case write && info.Size() != 0:
		err = errors.New("not an empty file")
	case write:
		// A write of nothing: what a security module refuses shows here, before any byte.
		_, err = unix.Write(fds[0], nil)
	default:
		_, err = unix.Pread(fds[0], nil, 0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countingReader counts the raw bytes read; with a limit (a restore's signed raw size), more
// than that is an error: what a backup unpacks to is bounded by what was signed.
type countingReader struct {
	r     io.Reader
	n     *atomic.Int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if total := c.n.Add(int64(n)); c.limit > 0 && total > c.limit {
		return n, fmt.Errorf("the backup unpacks to more than the %d bytes its manifest says: %w", c.limit, artifact.ErrCorrupt)
	}
	return n, err
}
