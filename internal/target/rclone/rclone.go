// Package rclone keeps objects on any remote of the user's rclone.conf (Google Drive,
// Dropbox, Backblaze B2, …) through rclone's Go packages: no rclone binary is run.
package rclone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/config/configmap"
	"github.com/rclone/rclone/fs/object"
	"github.com/rclone/rclone/lib/atexit"
	"github.com/rclone/rclone/lib/encoder"
)

// Target keeps objects under a directory of an rclone remote. A Put streams to a hidden
// temporary name beside its key, then moves it into place server-side, after checking the key
// is free; a remote that cannot move server-side (B2) gets the object under its key directly,
// as the remote publishes an upload only once complete. Remotes that cannot store a stream of
// unknown size without spooling it to local disk (OneDrive, pCloud, …) are refused.
type Target struct {
	cfg     Config
	f       fs.Fs
	backend string               // the remote's type: "drive", "sftp"…
	buffer  int64                // what the backend holds in memory per upload
	enc     encoder.MultiEncoder // how the local backend names files on disk
}

// quietOnce sends rclone's own logging (its package-wide logger and level) to the process's
// slog handler, warnings and errors only, and keeps rclone from taking SIGINT and SIGTERM:
// its atexit package (used by B2's large uploads) would otherwise exit the process on them,
// before docker-backup starts the containers it stopped again.
var quietOnce sync.Once

// New opens cfg's remote from rclone.conf. Nothing is sent yet for most backends.
func New(ctx context.Context, cfg Config) (*Target, error) {
	quietOnce.Do(func() {
		atexit.IgnoreSignals()
		fs.SetLogger(slog.Default().Handler())
		fs.GetConfig(context.Background()).LogLevel = fs.LogLevelWarning
	})
	file, source, err := cfg.configFile()
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg, err)
	}
	section, err := readSection(file, cfg.Remote)
	if err != nil {
		return nil, fmt.Errorf("target %s: reading the rclone config file %s (named by %s): %w", cfg, file, source, err)
	}
	if section == nil {
		return nil, fmt.Errorf("target %s: no remote %q in the rclone config file %s (named by %s)", cfg, cfg.Remote, file, source)
	}
	ri, err := fs.Find(section["type"])
	if err != nil {
		return nil, fmt.Errorf("target %s: the remote %q is of type %q, which this build does not include (it has %s)", cfg, cfg.Remote, section["type"], Backends())
	}
	if wraps(ri) {
		return nil, fmt.Errorf("target %s: the remote %q is of type %q, which wraps another remote: docker-backup opens only remotes that store data themselves (for encryption, use DOCKER_BACKUP_AGE_RECIPIENTS)", cfg, cfg.Remote, ri.Name)
	}
	m := configmap.New()
	m.AddGetter(configmap.Simple(section), configmap.PriorityConfig)
	m.AddGetter(defaults(ri.Options), configmap.PriorityDefault)
	if forced, ok := linkOptions[ri.Name]; ok {
		m.AddGetter(forced, configmap.PriorityNormal)
	}
	m.AddSetter(refreshed{remote: cfg.Remote, section: section})
	f, err := ri.NewFs(quiet(ctx), cfg.Remote, cfg.Path, m)
	if errors.Is(err, fs.ErrorIsFile) {
		return nil, fmt.Errorf("target %s: the path is a file, not a directory", cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg, explain(cfg, err))
	}
	if f.Features().PutStream == nil {
		return nil, fmt.Errorf("target %s: rclone's %s backend cannot store a stream of unknown size without a temporary file on local disk, which the sidecar never writes; use one of %s", cfg, ri.Name, Backends())
	}
	return &Target{cfg: cfg, f: f, backend: ri.Name, buffer: uploadBuffer(m), enc: localEncoding(m)}, nil
}

// Backends lists the backends this build includes that a target can use.
func Backends() string {
	var names []string
	for _, ri := range fs.Registry {
		if !wraps(ri) {
			names = append(names, ri.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// wraps says whether a backend stores its data on another remote it opens by name (crypt,
// linked in by rclone's operations): that remote is not in rclone's own config here.
func wraps(ri *fs.RegInfo) bool { return ri.Options.Get("remote") != nil }

// defaults gives an option's default value, as rclone does when a config file leaves it out.
type defaults fs.Options

func (d defaults) Get(key string) (string, bool) {
	if o := fs.Options(d).Get(key); o != nil {
		return o.String(), true
	}
	return "", false
}

// refreshed keeps what a backend updates (an OAuth token it refreshed) in memory: the
// sidecar never writes rclone.conf.
type refreshed struct {
	remote  string
	section map[string]string
}

func (r refreshed) Set(key, value string) {
	r.section[key] = value
	slog.Debug("rclone: a remote updated its config in memory, not in rclone.conf", "remote", r.remote, "setting", key)
}

// quiet gives ctx rclone's settings for this target: its logging at warnings and above.
func quiet(ctx context.Context) context.Context {
	ctx, ci := fs.AddConfig(ctx)
	ci.LogLevel = fs.LogLevelWarning
	return ctx
}

// uploadBuffer is what the backend holds in memory per upload: its chunk, times the chunks
// sent at once.
func uploadBuffer(m configmap.Getter) int64 {
	var chunk fs.SizeSuffix
	if v, ok := m.Get("chunk_size"); !ok || chunk.Set(v) != nil {
		return 0
	}
	n := int64(1)
	for _, key := range []string{"upload_concurrency", "concurrency"} { // B2's, SFTP's
		if v, ok := m.Get(key); ok {
			if c, err := strconv.Atoi(v); err == nil && c > 1 {
				n = int64(c)
				break
			}
		}
	}
	return int64(chunk) * n
}

// String is the target's name: no secret is in it.
func (t *Target) String() string { return t.cfg.String() }

// BufferSize is what the backend holds in memory per upload.
func (t *Target) BufferSize() int64 { return t.buffer }

func (t *Target) where(key string) string { return key + " in " + t.String() }

// Put streams r to a hidden temporary name beside key and moves it into place. See
// docs/targets.md for which backends make the check for an existing object race-free.
func (t *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	ctx = quiet(ctx)
	if err := t.checkKey(ctx, key); err != nil {
		return 0, fmt.Errorf("storing %s: %w", t.where(key), err)
	}
	if err := t.free(ctx, key); err != nil {
		return 0, err
	}
	move := t.f.Features().Move
	name := key
	if move != nil {
		dir, base := path.Split(key)
		name = dir + "." + base + target.TempMarker + target.RandomSuffix()
	}
	src := &sourceReader{r: target.WithContext(ctx, r)}
	info := object.NewStaticObjectInfo(name, time.Now(), -1, true, nil, t.f)
	o, err := t.f.Features().PutStream(ctx, src, info)
	if err == nil {
		err = ctx.Err() // cancelled once the stream was whole: not published either
	}
	if err == nil && o.Size() >= 0 && o.Size() != src.n {
		err = fmt.Errorf("the remote kept %d of the %d bytes sent", o.Size(), src.n)
	}
	switch {
	case err != nil && src.err != nil:
		err = fmt.Errorf("storing %s: %w", t.where(key), src.err)
	case err != nil:
		err = fmt.Errorf("storing %s: %w", t.where(key), explain(t.cfg, err))
	case move != nil:
		err = t.publish(ctx, move, o, key)
	}
	if err != nil && (o != nil || move != nil) {
		// Under a temporary name, or an object the failed Put returned: its own. (Without a
		// move, an object found under the key by name may be another writer's.)
		t.remove(ctx, o, name)
	}
	return src.n, err
}

// free checks that nothing is stored under key.
func (t *Target) free(ctx context.Context, key string) error {
	_, err := t.f.NewObject(ctx, key)
	switch {
	case err == nil:
		return fmt.Errorf("%s: %w", t.where(key), target.ErrExist)
	case errors.Is(err, fs.ErrorObjectNotFound), errors.Is(err, fs.ErrorDirNotFound):
		return nil
	}
	return fmt.Errorf("storing %s: looking for an existing object: %w", t.where(key), explain(t.cfg, err))
}

// publish moves the uploaded temporary object to key, once more checking key is free.
func (t *Target) publish(ctx context.Context, move func(context.Context, fs.Object, string) (fs.Object, error), o fs.Object, key string) error {
	if err := t.free(ctx, key); err != nil {
		return err
	}
	if _, err := move(ctx, o, key); err != nil {
		if _, serr := t.f.NewObject(ctx, key); serr == nil {
			return fmt.Errorf("%s: %w", t.where(key), target.ErrExist)
		}
		return fmt.Errorf("storing %s: moving %s into place: %w", t.where(key), o.Remote(), explain(t.cfg, err))
	}
	return nil
}

// remove removes what a failed Put left, for up to a minute even if ctx was cancelled; what
// cannot be removed is hidden and swept later (RemoveIncomplete, RemoveStale).
func (t *Target) remove(ctx context.Context, o fs.Object, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if o == nil {
		var err error
		if o, err = t.f.NewObject(ctx, name); err != nil {
			return
		}
	}
	if err := o.Remove(ctx); err != nil && !errors.Is(err, fs.ErrorObjectNotFound) {
		slog.Warn("rclone: could not remove what a failed upload left", "target", t.String(), "name", name, "err", err)
	}
}

// sourceReader counts what a Put reads and keeps its source's error, to tell it from the
// remote's.
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Get opens the object at key.
func (t *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	ctx = quiet(ctx)
	o, err := t.object(ctx, key)
	if err != nil {
		return nil, err
	}
	return t.open(ctx, o)
}

// object finds the object at key, through no link (checkKey).
func (t *Target) object(ctx context.Context, key string) (fs.Object, error) {
	if err := t.checkKey(ctx, key); err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.where(key), err)
	}
	o, err := t.f.NewObject(ctx, key)
	switch {
	case errors.Is(err, fs.ErrorObjectNotFound), errors.Is(err, fs.ErrorDirNotFound), errors.Is(err, fs.ErrorIsDir):
		return nil, fmt.Errorf("%s: %w", t.where(key), target.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", t.where(key), explain(t.cfg, err))
	}
	return o, nil
}

func (t *Target) open(ctx context.Context, o fs.Object) (io.ReadCloser, error) {
	rc, err := o.Open(ctx)
	if err != nil {
		if errors.Is(err, fs.ErrorObjectNotFound) {
			return nil, fmt.Errorf("%s: %w", t.where(o.Remote()), target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s: %w", t.where(o.Remote()), explain(t.cfg, err))
	}
	return &reader{rc: rc, t: t, key: o.Remote()}, nil
}

type reader struct {
	rc  io.ReadCloser
	t   *Target
	key string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", r.t.where(r.key), explain(r.t.cfg, err))
	}
	return n, err
}

func (r *reader) Close() error { return r.rc.Close() }

// Delete removes the object at key.
func (t *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	ctx = quiet(ctx)
	o, err := t.object(ctx, key)
	if errors.Is(err, target.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = o.Remove(ctx)
	}
	if err != nil && !errors.Is(err, fs.ErrorObjectNotFound) {
		return fmt.Errorf("deleting %s: %w", t.where(key), explain(t.cfg, err))
	}
	return nil
}

// Requirement is what the remote's account needs for an operation of target.Check.
func (t *Target) Requirement(operation string) string {
	need := map[string]string{
		"write":  "to create folders and files under the target's path, and to move (rename) them there",
		"list":   "to list the target's folders",
		"read":   "to read the files it wrote",
		"delete": "to delete the files it wrote",
	}[operation]
	if need == "" {
		return ""
	}
	return "the account of the rclone remote " + t.cfg.Remote + " (its token or key in rclone.conf) needs " + need
}

// Close ends the remote's connections (an SFTP remote's pool).
func (t *Target) Close() error {
	if s, ok := t.f.(fs.Shutdowner); ok {
		return s.Shutdown(context.Background())
	}
	return nil
}
