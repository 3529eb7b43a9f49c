// Package worker runs a volume backup's heavy work beside the data: a short-lived container
// of this tool's own static binary (Runner; its image in image.go) mounts the service's volumes
// (read-only for a backup) and runs package agent there; the stored bytes cross a unix socket
// (Channel) or the attach stream, never the raw tar; with Local (package inplace) the plugin
// reads plain local volumes in place on the engine's host instead. Mode says which of these a
// backup or restore uses.
package worker

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
	"github.com/docker-backup/docker-backup/internal/worker/inplace"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Command is the argument that makes the plugin's and the sidecar's binaries run the worker
// (workerimage.Command).
const Command = workerimage.Command

// LabelWorker marks a worker container (beside the scratch labels that get it reaped); its
// value is the operation.
const LabelWorker = workerimage.LabelWorker

// Lifetime bounds a worker's life: past it, anyone may remove it (scratch.Reap).
const Lifetime = 24 * time.Hour

// Engine is the part of the Engine API a Runner uses.
type Engine interface {
	scratch.Engine
	ContainerAttach(ctx context.Context, id string, options client.ContainerAttachOptions) (client.ContainerAttachResult, error)
	ContainerWait(ctx context.Context, id string, options client.ContainerWaitOptions) client.ContainerWaitResult
	ContainerKill(ctx context.Context, id string, options client.ContainerKillOptions) (client.ContainerKillResult, error)
}

// Runner starts worker containers for the volume strategy (it implements strategy.Worker).
type Runner struct {
	Engine Engine
	// Image finds (or makes) the worker image; called on first use, and again after a
	// failure (a transient one must not disable workers for a sidecar's life).
	Image func(ctx context.Context) (workerimage.Image, error)
	// Owner identifies the calling process for the labels (scratch.ProcessOwner,
	// scratch.SidecarOwner): a worker whose owner died is reaped.
	Owner string
	// Channel, when set, gives the socket directory the data goes through (nil: the attach
	// stream); called like Image.
	Channel func(ctx context.Context) (*Channel, error)
	// Local, when set, reads a backup's volumes in this process when it can (package
	// inplace); otherwise a worker container does.
	Local *inplace.Reader
	Log   *slog.Logger

	mu  sync.Mutex
	img *workerimage.Image
	ch  *Channel
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Runner) image(ctx context.Context) (workerimage.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.img != nil {
		return *r.img, nil
	}
	if r.Image == nil {
		return workerimage.Image{}, errors.New("no worker image is configured")
	}
	img, err := r.Image(ctx)
	if err != nil {
		return workerimage.Image{}, err
	}
	r.img = &img
	return img, nil
}

// noWorker wraps why the worker cannot be used.
func noWorker(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{strategy.ErrNoWorker}, args...)...)
}

// Mounts returns the mounts of c a worker needs to reach paths: for each path the mount that
// holds it, and the mounts below it. An error wrapping strategy.ErrNoWorker says why a path
// cannot be reached that way (it is in the container's own file system, or on a tmpfs).
func Mounts(c *containers.Container, paths []string, write bool) ([]mount.Mount, error) {
	var out []mount.Mount
	seen := map[string]bool{}
	add := func(m container.MountPoint) error {
		dst := path.Clean(m.Destination)
		if seen[dst] {
			return nil
		}
		seen[dst] = true
		mm := mount.Mount{Target: dst, ReadOnly: !write || !m.RW}
		switch m.Type {
		case mount.TypeVolume:
			mm.Type, mm.Source = mount.TypeVolume, m.Name
		case mount.TypeBind:
			mm.Type, mm.Source = mount.TypeBind, m.Source
		default:
			return noWorker("%s is on a %s mount, which another container cannot share", dst, m.Type)
		}
		out = append(out, mm)
		return nil
	}
	for _, p := range paths {
		holder := containers.HolderOf(c.Mounts, p)
		if holder == nil {
			return nil, noWorker("%s is in the container's own file system, not on a volume", p)
		}
		if err := add(*holder); err != nil {
			return nil, err
		}
		for _, m := range containers.MountsBelow(c.Mounts, p, holder) {
			if err := add(m); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Open creates (and does not start) a worker container with the mounts of c that hold paths,
// read-only unless access.Write — for a backup, Local reads them in this process instead when
// it can. The worker sees nothing else of the host but its own socket directory; it runs with
// a read-only root file system (a restore's staging of mounted files goes to a volume of its
// own, removed with it), no new privileges, and only the capabilities access needs
// (Capabilities). The caller must Close the session. An error wrapping strategy.ErrNoWorker
// means nothing was created and the archive API should be used.
func (r *Runner) Open(ctx context.Context, c *containers.Container, paths []string, access strategy.WorkerAccess) (strategy.WorkerSession, error) {
	write := access.Write
	if r.Local != nil && !write {
		s, err := r.Local.Open(ctx, c, paths)
		if err == nil {
			return s, nil
		}
		r.log().Debug("the volumes are not read on this host: "+err.Error()+"; a worker container reads them", "container", c.Name)
	}
	mounts, err := Mounts(c, paths, write)
	if err != nil {
		return nil, err
	}
	img, err := r.image(ctx)
	if err != nil {
		return nil, noWorker("%v", err)
	}
	// What a killed run left behind (workers and verify's scratch copies) goes first.
	if _, err := scratch.Reap(ctx, r.Engine, scratch.Stale(r.Owner, time.Now()), r.log()); err != nil {
		r.log().Warn("removing leftover worker and scratch containers", "error", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	op := agent.OpBackup
	if write {
		op = agent.OpRestore
	}
	s := &session{r: r, name: "docker-backup-worker-" + safeName(c.Name) + "-" + id, paths: paths}
	for _, m := range mounts {
		s.mounts = append(s.mounts, m.Target)
	}
	cfg, hc := workerConfig(c, img, access, r.labels(id, c, op))
	mounts = ownMounts(mounts, img, write)
	create := func(extra ...mount.Mount) error {
		hc.Mounts = append(append([]mount.Mount{}, mounts...), extra...)
		created, err := scratch.CreateContainer(ctx, r.Engine, client.ContainerCreateOptions{Name: s.name, Config: cfg, HostConfig: hc})
		if err != nil {
			// A create that failed some other way may still have been done.
			s.id = s.name
			_ = s.remove()
			return err
		}
		s.id = created.ID
		return nil
	}
	if hc.NetworkMode != "none" {
		// Joining the service's namespace fails at the start when the service stopped
		// meanwhile (or cannot be joined): the worker is made again with a namespace of its own.
		s.ownNetwork = func(ctx context.Context) error {
			if err := s.remove(); err != nil {
				return err
			}
			hc.NetworkMode = "none"
			created, err := scratch.CreateContainer(ctx, r.Engine, client.ContainerCreateOptions{Name: s.name, Config: cfg, HostConfig: hc})
			if err != nil {
				return fmt.Errorf("creating the worker container: %w", err)
			}
			s.id = created.ID
			return nil
		}
	}
	if err := r.createOnChannel(ctx, s, create); err != nil {
		return nil, err
	}
	return s, nil
}

// workerConfig is the configuration of a worker container for c: the image's program, every
// stream attached, labels; no network of its own, removed once it exits, only the
// capabilities access needs, a read-only root file system, no new privileges.
func workerConfig(c *containers.Container, img workerimage.Image, access strategy.WorkerAccess, labels map[string]string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image: img.Ref, Entrypoint: img.Entrypoint, User: "0:0", WorkingDir: "/",
		OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Labels: labels,
	}
	// No network: a new, empty network namespace — except for a backup of a running service,
	// whose namespace the worker joins instead (it sends nothing over it; making an empty
	// one costs the engine here about 0.3 s of the worker's start).
	network := container.NetworkMode("none")
	if !access.Write && c.Running {
		network = container.NetworkMode("container:" + c.ID)
	}
	// The engine removes the worker once it exits, whatever became of the caller (kill -9
	// included: its stream ends, and so does the worker); Close removes one that did not.
	hc := &container.HostConfig{
		AutoRemove:     true,
		NetworkMode:    network,
		LogConfig:      container.LogConfig{Type: "none"},
		SecurityOpt:    []string{"no-new-privileges"},
		CapDrop:        []string{"ALL"},
		CapAdd:         Capabilities(access),
		ReadonlyRootfs: true,
	}
	return cfg, hc
}

// createOnChannel creates the worker with its socket directory mounted when there is a
// channel the engine can mount, else without (its data then goes over the attach stream).
// An error wrapping strategy.ErrNoWorker: nothing was created.
func (r *Runner) createOnChannel(ctx context.Context, s *session, create func(extra ...mount.Mount) error) error {
	if ch := r.channel(ctx); ch != nil {
		m, err := s.listen(ch)
		if err != nil {
			// A socket path longer than the kernel takes (a long TMPDIR), for one.
			r.log().Info("the worker's data goes over its attach stream: no socket for it in "+ch.Dir, "error", err)
		} else if err = create(m); err == nil {
			return nil
		} else {
			r.log().Info("the worker's data goes over its attach stream: the engine cannot mount "+s.dir+" (a remote engine?)", "error", err)
		}
		s.closeChannel()
	}
	if err := create(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return noWorker("creating the worker container: %v", err)
	}
	return nil
}

// labels are those of a worker: reaped with the scratch copies once its owner is gone or
// it expired.
func (r *Runner) labels(id string, c *containers.Container, op string) map[string]string {
	return map[string]string{
		scratch.LabelScratch: id,
		scratch.LabelOwner:   r.Owner,
		scratch.LabelExpires: strconv.FormatInt(time.Now().Add(Lifetime).Unix(), 10),
		scratch.LabelService: c.Project + "/" + c.Service,
		LabelWorker:          op,
	}
}

// ownMounts adds to the service's mounts those of the worker itself: for a restore, where a
// staged restore keeps the new content of mounted files (not renamed over: rewritten at the
// commit), an anonymous volume removed with the worker; the image's declared volumes covered
// with an empty read-only tmpfs (no volume is made of them).
func ownMounts(mounts []mount.Mount, img workerimage.Image, write bool) []mount.Mount {
	if write {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Target: mountpath.WorkerStaging})
	}
	for _, v := range img.Volumes {
		if v = path.Clean(v); !slices.ContainsFunc(mounts, func(m mount.Mount) bool { return m.Target == v }) {
			mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: v, ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 4096}})
		}
	}
	return mounts
}

// Capabilities are the only ones a worker keeps (all others are dropped): reading every file
// whatever its mode and owner (DAC_OVERRIDE; a backup's mounts are read-only); for a restore,
// also giving files their owners (CHOWN), their modes, times and links whoever owns them
// (FOWNER) and set-group-ID bits for groups not its own (FSETID); for a trusted restore,
// also making device nodes (MKNOD) and setting file capabilities (SETFCAP), which the tar
// policy refuses from other backups.
func Capabilities(access strategy.WorkerAccess) []string {
	caps := []string{"CAP_DAC_OVERRIDE"}
	if access.Write {
		caps = append(caps, "CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID")
		if access.Trusted {
			caps = append(caps, "CAP_MKNOD", "CAP_SETFCAP")
		}
	}
	return caps
}

func (r *Runner) channel(ctx context.Context) *Channel {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil && r.Channel != nil {
		ch, err := r.Channel(ctx)
		if err != nil {
			r.log().Info("no socket directory for workers: their data goes over the attach stream", "error", err)
			return nil
		}
		r.ch = ch
	}
	return r.ch
}

var unsafeChars = strings.NewReplacer("/", "-", ":", "-", " ", "-")

func safeName(s string) string { return strings.Trim(unsafeChars.Replace(s), "-.") }

type session struct {
	r      *Runner
	id     string
	name   string
	paths  []string
	mounts []string
	// The socket channel, when the worker sees it.
	dir    string
	ln     *net.UnixListener
	socket string // its path in the worker

	// ownNetwork makes the worker again with a network namespace of its own (set when it
	// joins the service's).
	ownNetwork func(ctx context.Context) error
	startOnce  sync.Once
	startErr   error
	att        *client.ContainerAttachResult
	// The worker's end (exited and removed by the engine), watched from before its start,
	// and how to stop watching.
	exit     chan exitStatus
	stopWait context.CancelFunc
	// done: the worker reported its work done (it exits and is removed by itself).
	done bool

	// A staged restore: the verdict the sender gives the worker (Commit: true, Close: false),
	// and the run's end, once Stage returned.
	verdict   chan bool
	result    chan error
	gone      chan struct{} // closed when the worker's output ended
	committed chan struct{} // closed when the worker said it moved everything into place
	commit    bool          // Commit was called
}

// listen makes the session's socket directory and listens in it.
func (s *session) listen(ch *Channel) (mount.Mount, error) {
	dir, err := os.MkdirTemp(ch.Dir, sessionPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return mount.Mount{}, err
	}
	s.dir = dir
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "data.sock"), Net: "unix"})
	if err != nil {
		return mount.Mount{}, err
	}
	s.ln = ln
	m, inWorker := ch.Mount(dir)
	s.socket = path.Join(inWorker, "data.sock")
	return m, nil
}

func (s *session) closeChannel() {
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
	s.socket = ""
}

// Backup runs the worker's backup: the stored stream goes to out.
func (s *session) Backup(ctx context.Context, req strategy.WorkRequest, out io.Writer, progress func(int64)) (*artifact.Contents, error) {
	r := agent.Request{Op: agent.OpBackup, Paths: s.paths, Mounts: s.mounts, Compression: req.Compression, Recipients: req.Recipients, Exclude: req.Exclude, Socket: s.socket}
	sink, isFile := out.(strategy.FileSink)
	// The worker writes a new local file itself, given its descriptor over the socket.
	r.File = isFile && s.ln != nil
	rep, err := s.run(ctx, r, nil, out, progress, nil)
	if err != nil {
		return nil, err
	}
	if rep.Excluded != len(req.Exclude) {
		// An older worker ignores the patterns: its backup holds what they exclude.
		return nil, fmt.Errorf("the worker applied %d of the %d exclusion patterns (its image is of a release without exclusions): use a worker of this release, or the archive API (%s=off)", rep.Excluded, len(req.Exclude), EnvMode)
	}
	if rep.File {
		sum, err := hex.DecodeString(rep.SHA256)
		if err != nil || len(sum) != sha256.Size || !r.File {
			return nil, fmt.Errorf("the worker's report of the backup file is wrong: %q", rep.SHA256)
		}
		if err := sink.Wrote(rep.Size, sum, rep.Chunks); err != nil {
			return nil, err
		}
		s.r.log().Info("the worker wrote the backup file into the target directory itself")
	} else if r.File {
		s.r.log().Info("the worker could not write the backup file itself: the stream came over its socket")
	}
	return rep.Contents, nil
}

// Count digests the paths as Backup would, and sends nothing.
func (s *session) Count(ctx context.Context, exclude []string) (*artifact.Contents, error) {
	rep, err := s.run(ctx, agent.Request{Op: agent.OpCount, Paths: s.paths, Mounts: s.mounts, Exclude: exclude}, nil, io.Discard, nil, nil)
	if err != nil {
		return nil, err
	}
	if rep.Excluded != len(exclude) {
		return nil, fmt.Errorf("the worker applied %d of the %d exclusion patterns (its image is of a release without exclusions): use a worker of this release, or the archive API (%s=off)", rep.Excluded, len(exclude), EnvMode)
	}
	return rep.Contents, nil
}

// Measure adds up the paths as Backup would walk them, from each entry's metadata alone.
func (s *session) Measure(ctx context.Context, exclude []string) (*strategy.Sizes, error) {
	rep, err := s.run(ctx, agent.Request{Op: agent.OpMeasure, Paths: s.paths, Mounts: s.mounts, Exclude: exclude}, nil, io.Discard, nil, nil)
	if err != nil {
		if strings.Contains(err.Error(), "unknown operation") {
			return nil, fmt.Errorf("the worker cannot measure sizes (its image is of an older release): use a worker of this release (%w)", err)
		}
		return nil, err
	}
	if m := rep.Measured; m != nil && rep.Excluded == len(exclude) {
		return &strategy.Sizes{Files: m.Files, Bytes: m.Bytes, ExcludedFiles: m.ExcludedFiles, ExcludedBytes: m.ExcludedBytes}, nil
	}
	return nil, fmt.Errorf("the worker measured nothing, or applied %d of the %d exclusion patterns (its image is of an older release): use a worker of this release", rep.Excluded, len(exclude))
}

// Restore runs the worker's restore of the compressed stream in.
func (s *session) Restore(ctx context.Context, req strategy.WorkRequest, in io.Reader, progress func(int64)) error {
	_, err := s.run(ctx, agent.Request{Op: agent.OpRestore, Paths: s.paths, Mounts: s.mounts, Compression: req.Compression, Trusted: req.Trusted, Socket: s.socket, Size: req.Size}, in, io.Discard, progress, nil)
	return err
}

// Stage runs the worker's staged restore of the compressed stream in, up to the point where
// all of it is unpacked beside the data and the worker waits for the verdict (Commit, or Close
// to call it off).
func (s *session) Stage(ctx context.Context, req strategy.WorkRequest, in io.Reader, progress func(int64)) error {
	s.verdict, s.result, s.committed = make(chan bool, 1), make(chan error, 1), make(chan struct{})
	staged := make(chan struct{})
	var once, committed sync.Once
	r := agent.Request{Op: agent.OpRestore, Paths: s.paths, Mounts: s.mounts, Compression: req.Compression, Trusted: req.Trusted,
		Socket: s.socket, Staged: true, Size: req.Size, Room: req.Room}
	// The worker reads a local artifact itself, given its descriptor; what it read must then
	// be the artifact (checked here, before any verdict to commit).
	src, isFile := in.(strategy.FileSource)
	r.File = isFile && s.ln != nil
	if r.File {
		var c *artifact.Chunks
		r.Stored, c, r.Chunks = src.Bounds()
		if c != nil {
			r.ChunkSize = c.Size
		}
	}
	var checked error
	go func() {
		_, err := s.run(ctx, r, in, io.Discard, progress, func(rep agent.Report) {
			if rep.Staged {
				switch {
				case rep.File && r.File:
					sum, err := hex.DecodeString(rep.SHA256)
					if err != nil || len(sum) != sha256.Size {
						checked = fmt.Errorf("the worker's report of what it read is wrong: %q", rep.SHA256)
					} else if checked = src.Check(rep.Size, sum); checked == nil {
						s.r.log().Info("the worker read the backup file in the target directory itself")
					}
				case rep.File:
					checked = errors.New("the worker reports a file it was not given")
				}
				once.Do(func() { close(staged) })
			}
			if rep.Committed {
				committed.Do(func() { close(s.committed) })
			}
		})
		s.result <- err
	}()
	select {
	case <-staged:
		if checked != nil {
			// Close tells the worker to remove what it staged.
			return fmt.Errorf("%w%w", checked, errkind.Silent(strategy.ErrUnapplied))
		}
		return nil
	case err := <-s.result:
		s.result = nil
		if err == nil {
			err = errors.New("the worker ended without staging the restore")
		}
		return fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied))
	}
}

// Commit tells the worker of a staged restore to move it into place, and waits until it did
// (what it replaced is removed after: Close waits for that).
func (s *session) Commit(ctx context.Context) error {
	if s.result == nil || s.commit {
		return errors.New("nothing is staged")
	}
	s.commit = true
	s.verdict <- true
	select {
	case <-s.committed:
		return nil
	case err := <-s.result:
		s.result = nil
		if err == nil {
			err = errors.New("the worker ended without moving the restore into place")
		}
		return err
	}
}

// callOff waits for the worker of a staged restore to end (a minute at most, then it is
// killed): one not committed is told to remove what it staged first.
func (s *session) callOff() {
	if s.result == nil {
		return
	}
	if !s.commit {
		s.verdict <- false
	}
	select {
	case <-s.result:
	case <-time.After(time.Minute):
		s.kill()
		<-s.result
	}
	s.result = nil
}

// Start attaches to the worker container and starts it; the worker then waits for its
// request. Starting it early (while the artifact is verified) hides the start's latency;
// otherwise Backup and Restore start it.
func (s *session) Start(ctx context.Context) error {
	s.startOnce.Do(func() { s.startErr = s.start(ctx) })
	return s.startErr
}

func (s *session) start(ctx context.Context) error {
	err := s.attachAndStart(ctx)
	if err != nil && s.ownNetwork != nil && ctx.Err() == nil {
		s.r.log().Info("the worker cannot join the service's network namespace; it gets its own", "error", err)
		if err = s.ownNetwork(ctx); err == nil {
			err = s.attachAndStart(ctx)
		}
	}
	return err
}

func (s *session) attachAndStart(ctx context.Context) error {
	if s.att != nil {
		s.att.Close()
		s.att = nil
	}
	att, err := s.r.Engine.ContainerAttach(ctx, s.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("attaching to the worker container: %w", err)
	}
	s.att = &att
	s.watchExit()
	if _, err := s.r.Engine.ContainerStart(ctx, s.id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the worker container: %w", err)
	}
	return nil
}

// killWhenDone kills the worker when ctx ends before the returned function is called:
// whatever ends a run (cancelled, a failed target), the worker stops with it — a staged
// restore's worker is given the time to remove what it staged (its stream ends cut short) or
// to finish moving it into place.
func (s *session) killWhenDone(ctx context.Context, staged bool) (done func()) {
	var grace time.Duration
	if staged {
		grace = 30 * time.Second
	}
	ended := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-ended:
		case <-time.After(grace):
			s.kill()
		}
	})
	return func() {
		close(ended)
		stop()
	}
}

func (s *session) run(ctx context.Context, req agent.Request, in io.Reader, out io.Writer, progress func(int64), onReport func(agent.Report)) (*agent.Report, error) {
	defer s.killWhenDone(ctx, req.Staged)()
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	att := *s.att

	s.gone = make(chan struct{})
	line, _ := json.Marshal(req)
	var dataErr chan error
	stdout := out
	if s.ln != nil {
		dataErr = make(chan error, 1)
		go func(in io.Reader, out io.Writer) { dataErr <- s.transfer(in, out, req) }(in, out)
		stdout, in = io.Discard, nil
	}
	// The end of the worker's input tells it its final report came: only then does it exit
	// (see agent.Serve). A stream that fails on this side ends it too, cut short.
	var endOnce sync.Once
	endInput := func() { endOnce.Do(func() { _ = att.CloseWrite() }) }
	sendErr := make(chan error, 1)
	go func() {
		_, err := att.Conn.Write(append(line, '\n'))
		if err == nil && in != nil {
			// An incremental backup's parent metadata delimits itself: it comes unframed.
			err = s.send(att.Conn, in, !req.Incremental, req.Staged)
		}
		if err != nil {
			endInput()
		}
		sendErr <- err
	}()
	reports := &agent.ReportReader{Progress: progress, OnReport: func(rep agent.Report) {
		s.logReport(rep)
		if onReport != nil {
			onReport(rep)
		}
		if rep.Done || rep.Error != "" {
			endInput()
		}
	}}
	_, copyErr := stdcopy.StdCopy(stdout, reports, att.Reader)
	endInput()
	close(s.gone)
	if copyErr != nil {
		s.kill()
	}
	serr := <-sendErr
	if dataErr != nil {
		s.ln.Close() // a worker that never connected: Accept returns
		if derr := <-dataErr; derr != nil && (serr == nil || !errors.Is(serr, errInput)) {
			serr = derr
		}
	}
	last := reports.Last()
	// A worker that reported success is done: its exit (the engine takes about a second to
	// tell) matters only to explain a failure.
	code, werr := 0, error(nil)
	if last == nil || !last.Done || copyErr != nil || serr != nil {
		code, werr = s.wait(ctx)
	}
	switch {
	case serr != nil && errors.Is(serr, errInput):
		return nil, errors.Unwrap(serr) // the caller's reader's error (a corrupt artifact) comes first
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case copyErr != nil:
		return nil, copyErr
	case last != nil && last.Error != "" && last.Code == agent.CodeNoRoom:
		return nil, fmt.Errorf("%s%w", last.Error, errkind.Silent(strategy.ErrNoRoom))
	case last != nil && last.Error != "":
		return nil, fmt.Errorf("worker container: %s", last.Error)
	case werr != nil:
		return nil, werr
	case code != 0 || last == nil || !last.Done:
		return nil, &containers.ExitError{Cmd: "the worker container", Code: code, Stderr: reports.Tail()}
	case serr != nil:
		return nil, serr
	}
	s.done = true
	if progress != nil {
		progress(last.Raw)
	}
	return last, nil
}

// logReport logs what a report of the worker says for the user: a warning, or a line for
// debugging.
func (s *session) logReport(rep agent.Report) {
	if rep.Log != "" {
		s.r.log().Debug("worker container: "+rep.Log, "container", s.name)
	}
	if rep.Warn != "" {
		s.r.log().Warn(rep.Warn)
	}
}

var errInput = errors.New("")

// sourceReader remembers the error of the stream sent to the worker, to tell it from a
// failed write to the worker.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// send writes the stream in to the worker: in frames when framed (on the worker's input, or
// for a staged restore), once in ended with io.EOF (verified) the last frame follows and, for
// a staged restore, once Commit or Close said it, the verdict. A stream that fails is cut
// short: the worker of a staged restore then removes what it staged; any other is killed at
// once (it must not finish).
func (s *session) send(w io.Writer, in io.Reader, framed, staged bool) error {
	src := &sourceReader{r: in}
	failed := func(err error) error {
		if src.err != nil {
			// The stream did not end as verified.
			if !staged {
				s.kill()
			}
			return fmt.Errorf("%w%w", src.err, errInput)
		}
		s.kill()
		return fmt.Errorf("sending to the worker: %w", err)
	}
	if !framed {
		if _, err := io.Copy(w, src); err != nil {
			return failed(err)
		}
		return nil
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	fw := agent.NewFrameWriter(bw)
	if _, err := io.CopyBuffer(fw, src, make([]byte, 1<<20)); err != nil {
		return failed(err)
	}
	err := fw.End()
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return failed(err)
	}
	if !staged {
		return nil
	}
	return s.giveVerdict(w)
}

// giveVerdict waits for the verdict of a staged restore (Commit or Close) and sends it.
func (s *session) giveVerdict(w io.Writer) error {
	verdict := byte(agent.VerdictAbort)
	select {
	case commit := <-s.verdict:
		if commit {
			verdict = agent.VerdictCommit
		}
	case <-s.gone:
		return nil // the worker ended without waiting for it: its report says why
	}
	if _, err := w.Write([]byte{verdict}); err != nil {
		return fmt.Errorf("sending to the worker: %w", err)
	}
	return nil
}

// transfer moves the data over the socket: in to the worker (a restore) or the worker's
// stream to out (a backup). A failure on this side stops the worker.
func (s *session) transfer(in io.Reader, out io.Writer, req agent.Request) error {
	conn, err := s.ln.AcceptUnix()
	if err != nil {
		return nil // the worker ended without connecting: its report says why
	}
	defer conn.Close()
	if req.Incremental {
		return s.transferIncremental(conn, in, out)
	}
	if req.File && in == nil {
		// A backup: the file's descriptor goes first; what the worker sends after it (when it
		// cannot write the file) goes to out, which writes the file.
		if err := s.giveFile(conn, out.(strategy.FileSink).File()); err != nil {
			return err
		}
	}
	if req.File && in != nil {
		// A staged restore: the artifact's descriptor goes first; the worker answers whether
		// it reads the file itself or takes the stream in frames.
		if err := s.giveFile(conn, in.(strategy.FileSource).File()); err != nil {
			return err
		}
		answer := make([]byte, 1)
		if _, err := io.ReadFull(conn, answer); err != nil {
			return nil // the worker ended: its report says why
		}
		if answer[0] == agent.FileTaken {
			if err := s.giveVerdict(conn); err != nil {
				return err
			}
			_ = conn.CloseWrite()
			_, _ = io.Copy(io.Discard, conn) // until the worker is done with the socket
			return nil
		}
		s.r.log().Info("the worker could not read the backup file itself: the stream goes over its socket")
	}
	if in != nil {
		if err := s.send(conn, in, req.Staged, req.Staged); err != nil {
			return err
		}
		if err := conn.CloseWrite(); err != nil {
			return fmt.Errorf("sending to the worker: %w", err)
		}
		// Wait for the worker to finish reading (it closes its end).
		_, _ = io.Copy(io.Discard, conn)
		return nil
	}
	if _, err := io.CopyBuffer(out, conn, make([]byte, 1<<20)); err != nil {
		s.kill()
		return err
	}
	return nil
}

// giveFile sends f's descriptor to the worker, the socket's first message (Request.File).
func (s *session) giveFile(conn *net.UnixConn, f *os.File) error {
	if _, _, err := conn.WriteMsgUnix([]byte{'F'}, unixRights(int(f.Fd())), nil); err != nil {
		s.kill()
		return fmt.Errorf("giving the worker the backup file: %w", err)
	}
	return nil
}

func (s *session) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = s.r.Engine.ContainerKill(ctx, s.id, client.ContainerKillOptions{Signal: "KILL"})
}

type exitStatus struct {
	code int
	err  error
}

// watchExit starts waiting for the worker's exit and removal (AutoRemove); it must be called
// before the start: once removed, the worker's exit code is gone with it.
func (s *session) watchExit() {
	if s.stopWait != nil {
		s.stopWait()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWait = cancel
	exit := make(chan exitStatus, 1)
	s.exit = exit
	res := s.r.Engine.ContainerWait(ctx, s.id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	go func() {
		select {
		case st := <-res.Result:
			exit <- exitStatus{code: int(st.StatusCode)}
		case err := <-res.Error:
			exit <- exitStatus{code: -1, err: fmt.Errorf("waiting for the worker container: %w", err)}
		}
	}()
}

// wait returns the worker's exit code, once it is removed (a minute at most).
func (s *session) wait(context.Context) (int, error) {
	if s.exit == nil {
		return -1, errors.New("the worker container was not started")
	}
	select {
	case st := <-s.exit:
		s.exit <- st
		return st.code, st.err
	case <-time.After(time.Minute):
		return -1, errors.New("waiting for the worker container: it did not exit within a minute")
	}
}

// removed waits up to d for the started worker to be gone (false: not seen gone, or the
// wait failed).
func (s *session) removed(d time.Duration) bool {
	if s.exit == nil {
		return false
	}
	select {
	case st := <-s.exit:
		s.exit <- st
		return st.err == nil
	case <-time.After(d):
		return false
	}
}

// Close removes the worker container and its socket directory, even when ctx is cancelled;
// a staged restore not committed is called off first. The worker is gone when it returns (its
// mounts are free: a verify removes its scratch volumes next, a user may remove a volume).
// One that reported its work done exits by itself and the engine removes it (AutoRemove):
// that is waited for; any other is removed at once.
func (s *session) Close() error {
	s.callOff()
	if s.att != nil {
		s.att.Close()
		s.att = nil
	}
	s.closeChannel()
	if s.stopWait != nil {
		defer s.stopWait()
	}
	if s.done && s.removed(30*time.Second) {
		return nil
	}
	err := s.remove()
	s.removed(30 * time.Second) // one the engine was already removing
	return err
}

func (s *session) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.r.Engine.ContainerRemove(ctx, s.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	// Not found or already being removed: the engine removes it (AutoRemove).
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("removing the worker container %s: %w", s.name, err)
	}
	return nil
}
