// Package volume is the strategy for files: the container's volumes and bind mounts (or given
// paths) as one tar stream, through a worker beside the data when one can run, else the
// Engine's archive API; every restored entry is checked by the tar policy (package tarpolicy);
// verify compares the file tree's digest.
package volume

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"github.com/moby/moby/api/types/mount"
)

// Strategy archives directories (or files) of a container through the Engine's archive API,
// so it works on stopped containers and on images that have no tar or shell. By default it
// takes the container's named volumes and read-write bind mounts.
//
// The artifact is one tar stream whose entries are named by their absolute path in the
// container without the leading slash ("var/lib/app/data/x"), keeping contents, modes,
// ownership, times, symbolic links, hard links and empty directories. Restore writes each
// path back through the same API. Files created after the backup are left in place.
type Strategy struct {
	paths   []string     // explicit paths; empty means the container's mounts
	exclude *exclude.Set // what a backup leaves out below each path
	// NoStop restores into the running container instead of stopping it.
	NoStop bool
	// Worker, when set, does the work beside the data (BackupPacked, RestorePacked); the
	// archive API is the fallback when it cannot.
	Worker strategy.Worker
	// RequireWorker turns that fallback into an error.
	RequireWorker bool
	Log           *slog.Logger

	mu   sync.Mutex
	warm strategy.WorkerSession // started by WarmRestore, taken by RestorePacked
	// done are the workers of backups that finished: their removal is waited for by Settle,
	// while the backup is published.
	done []strategy.WorkerSession
}

// New returns a volume strategy for the given absolute paths (none: the mounts) whose backups
// leave out what the gitignore-style patterns excl match below each path (package exclude).
func New(paths, excl []string) (*Strategy, error) {
	clean, err := cleanPaths(paths)
	if err != nil {
		return nil, err
	}
	set, err := exclude.Compile(excl)
	if err != nil {
		return nil, err
	}
	if err := checkAnchors(clean, set.Patterns()); err != nil {
		return nil, err
	}
	return &Strategy{paths: clean, exclude: set}, nil
}

// checkAnchors refuses an anchored pattern that starts with a backed-up path's own absolute
// path (/data/cache, backing up /data): patterns are relative to each path, so it would mean
// /data/data/cache and leave out nothing the user meant, silently.
func checkAnchors(paths, patterns []string) error {
	for _, p := range patterns {
		rest, anchored := strings.CutPrefix(p, "/")
		if !anchored {
			continue
		}
		for _, dir := range paths {
			d := strings.TrimPrefix(dir, "/")
			if d == "" || (rest != d && !strings.HasPrefix(rest, d+"/")) {
				continue
			}
			within := strings.TrimPrefix(strings.TrimPrefix(rest, d), "/")
			if within == "" {
				return fmt.Errorf("exclude pattern %q is the backed-up path %s itself: patterns are relative to each backed-up path (to back up nothing of %s, leave it out of --paths)", p, dir, dir)
			}
			return fmt.Errorf("exclude pattern %q starts with the backed-up path %s: patterns are relative to each backed-up path, so it means %s%s; to leave out %s write %q", p, dir, dir, p, path.Join(dir, within), "/"+within)
		}
	}
	return nil
}

// Name returns "volume".
func (v *Strategy) Name() string { return "volume" }

// Extension returns "tar".
func (v *Strategy) Extension() string { return "tar" }

// SourcePaths is the manifest key listing the backed-up paths, comma-separated.
const SourcePaths = "paths"

// SourceExclude is the manifest key of the patterns a backup left out below each path, one a
// line (absent: nothing was left out).
const SourceExclude = "exclude"

// source is what the manifest records of a backup of paths read through dataPath.
func (v *Strategy) source(paths []string, dataPath string) strategy.Source {
	src := strategy.Source{SourcePaths: strings.Join(paths, ","), SourceDataPath: dataPath}
	if !v.exclude.Empty() {
		src[SourceExclude] = strings.Join(v.exclude.Patterns(), "\n")
	}
	return src
}

// Excluded are the patterns a volume backup left out, as its manifest's source records them.
func Excluded(src map[string]string) []string {
	if src[SourceExclude] == "" {
		return nil
	}
	return strings.Split(src[SourceExclude], "\n")
}

// DefaultPaths returns the mounts the volume strategy backs up when no paths are given:
// named volumes and read-write bind mounts, except sockets and the Docker socket's directory.
func DefaultPaths(c *containers.Container) []string {
	var out []string
	for _, m := range c.Mounts {
		switch {
		case m.Type == mount.TypeVolume:
		case m.Type == mount.TypeBind && m.RW:
		default:
			continue
		}
		d := m.Destination
		if strings.HasSuffix(d, ".sock") || d == "/var/run" || d == "/run" || strings.HasPrefix(d, "/run/") || strings.HasPrefix(d, "/var/run/") {
			continue
		}
		out = append(out, d)
	}
	clean, _ := cleanPaths(out)
	return clean
}

func (v *Strategy) pathsFor(c *containers.Container) ([]string, error) {
	if len(v.paths) > 0 {
		return v.paths, nil
	}
	paths := DefaultPaths(c)
	if len(paths) == 0 {
		return nil, fmt.Errorf("the container has no volumes or read-write bind mounts: name what to back up with --paths /some/dir")
	}
	if err := checkAnchors(paths, v.exclude.Patterns()); err != nil {
		return nil, err
	}
	return paths, nil
}

// Backup writes one tar stream of all paths to w.
func (v *Strategy) Backup(ctx context.Context, c *containers.Container, w io.Writer) (strategy.Source, error) {
	paths, err := v.pathsFor(c)
	if err != nil {
		return nil, strategy.StepErr(c, "copy", err)
	}
	tw := tar.NewWriter(w)
	for _, p := range paths {
		if err := copyPathOut(ctx, c, p, v.exclude, tw); err != nil {
			return nil, strategy.StepErr(c, "copy", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, strategy.StepErr(c, "copy", err)
	}
	return v.source(paths, DataPathArchive), nil
}

// BackupPacked backs up through a worker container: the raw tar never crosses the Engine's
// API, only the stored stream does.
func (v *Strategy) BackupPacked(ctx context.Context, c *containers.Container, req strategy.WorkRequest, w io.Writer, progress func(int64)) (strategy.Source, *artifact.Contents, error) {
	paths, err := v.pathsFor(c)
	if err != nil {
		return nil, nil, strategy.StepErr(c, "copy", err)
	}
	s, err := v.openWorker(ctx, c, paths, strategy.WorkerAccess{})
	if err != nil {
		return nil, nil, err
	}
	req.Exclude = v.exclude.Patterns()
	contents, err := s.Backup(ctx, req, w, progress)
	if err != nil {
		_ = s.Close()
		return nil, nil, strategy.StepErr(c, "copy", err)
	}
	// Done: it exits and the engine removes it while the backup is published (Settle waits).
	v.mu.Lock()
	v.done = append(v.done, s)
	v.mu.Unlock()
	return v.source(paths, dataPathOf(s)), contents, nil
}

// Settle waits until the workers of finished backups are gone (removed by the engine, or
// removed here): their mounts are free once it returns.
func (v *Strategy) Settle() {
	v.mu.Lock()
	done := v.done
	v.done = nil
	v.mu.Unlock()
	for _, s := range done {
		_ = s.Close()
	}
}

// openWorker opens a worker session and says which data path runs.
func (v *Strategy) openWorker(ctx context.Context, c *containers.Container, paths []string, access strategy.WorkerAccess) (strategy.WorkerSession, error) {
	if v.Worker == nil {
		if v.RequireWorker {
			return nil, strategy.StepErr(c, "copy", errors.New("a worker container is required but none is configured"))
		}
		v.log().Info("volume data path: the Engine's archive API")
		return nil, fmt.Errorf("%w: not configured", strategy.ErrNoWorker)
	}
	s, err := v.Worker.Open(ctx, c, paths, access)
	switch {
	case err == nil:
	case errors.Is(err, strategy.ErrNoWorker) && !v.RequireWorker:
		v.log().Info("volume data path: the Engine's archive API (no worker container: " + strings.TrimPrefix(err.Error(), strategy.ErrNoWorker.Error()+": ") + ")")
		return nil, err
	case errors.Is(err, strategy.ErrNoWorker):
		// Required: an error of its own, which no caller takes for "use the archive API".
		return nil, strategy.StepErr(c, "copy", fmt.Errorf("a worker container is required (DOCKER_BACKUP_WORKER=on) and none can be used: %s; or let the Engine's archive API do the work (DOCKER_BACKUP_WORKER=auto)",
			strings.TrimPrefix(err.Error(), strategy.ErrNoWorker.Error()+": ")))
	default:
		return nil, strategy.StepErr(c, "copy", err)
	}
	v.log().Info("volume data path: " + DataPathText(dataPathOf(s)))
	return s, nil
}

// RestorePacked restores through a worker container: the compressed stream goes in, the
// worker checks every entry with the same tar policy and writes the files.
func (v *Strategy) RestorePacked(ctx context.Context, c *containers.Container, data strategy.Data, comp artifact.Compression, progress func(int64)) error {
	paths, err := v.restorePaths(ctx, c, data)
	if err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	s := v.takeWarm()
	if s != nil {
		v.log().Info("volume data path: " + DataPathText(DataPathWorker))
	} else if s, err = v.openWorker(ctx, c, paths, strategy.WorkerAccess{Write: true, Trusted: data.Trusted}); err != nil {
		return err
	}
	defer s.Close()
	apply := func(ctx context.Context) error {
		return s.Restore(ctx, strategy.WorkRequest{Compression: comp, Trusted: data.Trusted, Size: data.Size}, data, progress)
	}
	if v.NoStop {
		return strategy.StepErr(c, "restore", apply(ctx))
	}
	return strategy.StepErr(c, "restore", c.WhileStopped(ctx, v.log(), apply))
}

// RestoreStaged restores through a worker container in two steps: the worker unpacks the
// stream into a staging directory at the root of each volume while the service runs (every
// entry checked by the tar policy), and only once the whole artifact matched is the service
// stopped (unless NoStop), each staged entry swapped with the one in place (directories
// merged, as Restore does), and the service started again; what was replaced is removed
// after. A restore that fails before
// (a damaged or forged artifact, a lost connection, a kill) leaves the service's data and
// the service untouched; the staging directory is removed by the worker (or, after a power
// cut, by the next restore, and skipped by backups).
func (v *Strategy) RestoreStaged(ctx context.Context, c *containers.Container, data strategy.Data, comp artifact.Compression, progress func(int64), staged func(context.Context)) error {
	paths, err := v.restorePaths(ctx, c, data)
	if err != nil {
		return strategy.StepErr(c, "restore", fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied)))
	}
	s, err := v.openWorker(ctx, c, paths, strategy.WorkerAccess{Write: true, Trusted: data.Trusted})
	if err != nil {
		if errors.Is(err, strategy.ErrNoWorker) {
			return err
		}
		return fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied))
	}
	defer s.Close()
	if err := s.Stage(ctx, strategy.WorkRequest{Compression: comp, Trusted: data.Trusted, Size: data.Size, Room: data.Room}, data.Reader, progress); err != nil {
		if errors.Is(err, strategy.ErrNoRoom) {
			v.log().Info("restoring in place: " + err.Error())
			return err
		}
		return strategy.StepErr(c, "restore", err)
	}
	if staged != nil {
		staged(ctx)
	}
	if err := ctx.Err(); err != nil {
		return strategy.StepErr(c, "restore", fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied)))
	}
	v.log().Info("moving the restored files into place")
	committing := false
	commit := func(ctx context.Context) error {
		committing = true
		return s.Commit(ctx)
	}
	if v.NoStop {
		err = commit(ctx)
	} else {
		err = c.WhileStopped(ctx, v.log(), commit)
	}
	if err != nil && !committing {
		err = fmt.Errorf("%w%w", err, errkind.Silent(strategy.ErrUnapplied)) // the service did not stop
	}
	return strategy.StepErr(c, "restore", err)
}

// WarmRestore opens and starts the worker of a restore of data into c while the artifact is
// still being verified; it waits for its request, and changes nothing. When it cannot,
// RestorePacked tries again and says why.
func (v *Strategy) WarmRestore(ctx context.Context, c *containers.Container, data strategy.Data) (release func()) {
	release = func() {
		if s := v.takeWarm(); s != nil {
			_ = s.Close()
		}
	}
	if v.Worker == nil {
		return release
	}
	paths, err := v.restorePaths(ctx, c, data)
	if err != nil {
		return release
	}
	s, err := v.Worker.Open(ctx, c, paths, strategy.WorkerAccess{Write: true, Trusted: data.Trusted})
	if err != nil {
		return release
	}
	if err := s.Start(ctx); err != nil {
		_ = s.Close()
		return release
	}
	v.mu.Lock()
	old := v.warm
	v.warm = s
	v.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return release
}

func (v *Strategy) takeWarm() strategy.WorkerSession {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.warm
	v.warm = nil
	return s
}

// copyPathOut appends the archive of p to tw, renaming its entries from the archive API's
// "base/..." to "abs/path/...", and leaving out the entries below p that excl excludes (and
// all that is below an excluded directory).
//
// A hard link kept whose file was left out carries the file's content itself, read by its own
// name. The Engine serves one archive of a container at a time (it holds the container until
// the stream is closed), so the archive of p is closed for that read and asked for again,
// resuming after the link: each such link costs a read of p up to it — rare (a file with one
// name excluded and another kept), on the fallback data path only.
func copyPathOut(ctx context.Context, c *containers.Container, p string, excl *exclude.Set, tw *tar.Writer) error {
	relinked := map[string]string{} // an excluded file's name → the kept link that carries its content
	var after []string
	for {
		link, err := copyPathFrom(ctx, c, p, excl, tw, after, relinked)
		if err != nil || link == nil {
			return err
		}
		if err := copyLinkedFile(ctx, c, link, tw); err != nil {
			return err
		}
		after = strings.Split(strings.TrimSuffix(link.Name, "/"), "/")
	}
}

// copyPathFrom is copyPathOut of the entries after the name after (nil: all) until a hard link
// kept whose file was left out and that no earlier entry carries: that link is returned,
// not written, and the archive is closed.
func copyPathFrom(ctx context.Context, c *containers.Container, p string, excl *exclude.Set, tw *tar.Writer, after []string, relinked map[string]string) (*tar.Header, error) {
	rc, err := c.CopyFrom(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	base := path.Base(p)
	prefix := strings.TrimPrefix(p, "/")
	rename := func(name string) (string, error) {
		rest, ok := strings.CutPrefix(name, base)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			return "", fmt.Errorf("archive of %s has an unexpected entry %q", p, name)
		}
		return prefix + rest, nil
	}
	var mounts []string
	for _, m := range c.Mounts {
		mounts = append(mounts, m.Destination)
	}
	skip := "" // a staged restore's directory (left by a power cut), or an excluded one
	rel := func(name string) string { return strings.Trim(strings.TrimPrefix(name, prefix), "/") }
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive of %s: %w", p, err)
		}
		if hdr.Name, err = rename(hdr.Name); err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if after != nil && slices.Compare(strings.Split(name, "/"), after) <= 0 {
			continue // written from an earlier read of the archive
		}
		if skip != "" && strings.HasPrefix(name, skip+"/") {
			continue
		}
		if hdr.Typeflag == tar.TypeDir && mountpath.IsStaging("/"+name, mounts) {
			skip = name
			continue
		}
		if excl.Excluded(rel(name), hdr.Typeflag == tar.TypeDir) {
			if hdr.Typeflag == tar.TypeDir {
				skip = name
			}
			continue
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = rename(hdr.Linkname); err != nil {
				return nil, err
			}
			if excl.Excluded(rel(hdr.Linkname), false) {
				kept, ok := relinked[hdr.Linkname]
				if !ok {
					relinked[hdr.Linkname] = hdr.Name
					return hdr, nil
				}
				hdr.Linkname = kept
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, fmt.Errorf("copying %s: %w", hdr.Name, err)
		}
	}
}

// copyLinkedFile writes the hard link hdr, whose first name was left out of the archive, as
// the regular file it is: its content read through its own name.
func copyLinkedFile(ctx context.Context, c *containers.Container, hdr *tar.Header, tw *tar.Writer) error {
	rc, err := c.CopyFrom(ctx, "/"+hdr.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	one, err := tr.Next()
	if err != nil {
		return fmt.Errorf("reading the archive of /%s: %w", hdr.Name, err)
	}
	if one.Typeflag != tar.TypeReg {
		return fmt.Errorf("/%s changed while it was archived (stop the service during backups: --stop)", hdr.Name)
	}
	hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeReg, "", one.Size
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing %s: %w", hdr.Name, err)
	}
	if _, err := io.Copy(tw, tr); err != nil {
		return fmt.Errorf("copying %s: %w", hdr.Name, err)
	}
	return nil
}

// Restore writes every backed-up path back into the container, stopping it first unless
// NoStop is set (it is started again on every path). Each path must be inside a writable
// volume or bind mount of the container (data.Allowed), whatever the manifest says, and the
// archive must pass the same checks as Check.
//
// A volume restore cannot be undone: one cut part-way (a kill, a lost connection, a damaged
// or replaced artifact found at its end) leaves the files written so far, beside the rest as
// they were. The artifact is verified completely before the first file is written.
func (v *Strategy) Restore(ctx context.Context, c *containers.Container, data strategy.Data) error {
	paths, err := v.restorePaths(ctx, c, data)
	if err != nil {
		return strategy.StepErr(c, "restore", err)
	}
	apply := func(ctx context.Context) error { return v.apply(ctx, c, data, paths) }
	if v.NoStop {
		return strategy.StepErr(c, "restore", apply(ctx))
	}
	return strategy.StepErr(c, "restore", c.WhileStopped(ctx, v.log(), apply))
}

// Interrupted says what a cut volume restore leaves (a staged one: only when cut while its
// files were moved into place).
func (v *Strategy) Interrupted() string {
	return "the files restored before the interruption are in place, the others are as they were: restore again"
}

// Check reads the whole archive and refuses it if a restore of it would write anywhere but
// below the backed-up paths, or (unless the backup is authenticated) create set-user-ID
// files or device nodes.
func (v *Strategy) Check(ctx context.Context, c *containers.Container, data strategy.Data) error {
	paths, err := v.restorePaths(ctx, c, data)
	if err != nil {
		return err
	}
	pol := tarpolicy.New(paths, data.Trusted)
	tr := tar.NewReader(data)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the backup archive: %w", err)
		}
		if _, err := pol.Check(hdr); err != nil {
			return err
		}
	}
}

// restorePaths are the manifest's paths, each checked to be inside a writable mount.
func (v *Strategy) restorePaths(ctx context.Context, c *containers.Container, data strategy.Data) ([]string, error) {
	paths, err := cleanPaths(strings.Split(data.Source[SourcePaths], ","))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("the manifest lists no valid paths (%q)", data.Source[SourcePaths])
	}
	for _, p := range paths {
		if err := strategy.CheckConfined(ctx, c, p, data.Allowed, "the backed-up path"); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func (v *Strategy) log() *slog.Logger {
	if v.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return v.Log
}

func (v *Strategy) apply(ctx context.Context, c *containers.Container, data strategy.Data, paths []string) error {
	pol := tarpolicy.New(paths, data.Trusted)
	tr := tar.NewReader(data)
	var cur *pathWriter
	finish := func() error {
		if cur == nil {
			return nil
		}
		err := cur.close()
		cur = nil
		return err
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cur.abort(err)
			return fmt.Errorf("reading the backup archive: %w", err)
		}
		p, err := pol.Check(hdr)
		if err != nil {
			cur.abort(err)
			return err
		}
		if cur == nil || cur.path != p {
			if err := finish(); err != nil {
				return err
			}
			cur = newPathWriter(ctx, c, p, hdr.Typeflag == tar.TypeDir)
		}
		if err := cur.write(hdr, tr); err != nil {
			cur.abort(err)
			return err
		}
	}
	// The end of the archive is not the end of the artifact: the rest is read, so that the
	// stored bytes are verified to the last one before the last path is closed.
	if err := data.Drain(); err != nil {
		cur.abort(err)
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	if w := pol.Dropped(); w != "" {
		v.log().Warn(w, "container", c.Name)
	}
	return nil
}

// pathWriter streams the entries of one backed-up path into the container with one
// CopyToContainer call, extracted into the path's parent directory so that the owner and
// mode of the path itself (a volume's root) are restored too. On a read-only root file
// system the parent is not writable: a directory is then extracted onto itself, which
// restores everything below it but leaves the owner and mode of the directory itself.
type pathWriter struct {
	path   string
	prefix string // archive prefix of the path's entries
	dest   string
	onto   bool // extracting a directory onto itself: entries are named "./..."
	pw     *io.PipeWriter
	tw     *tar.Writer
	done   chan error
}

func newPathWriter(ctx context.Context, c *containers.Container, p string, isDir bool) *pathWriter {
	pr, pw := io.Pipe()
	w := &pathWriter{path: p, prefix: strings.TrimPrefix(p, "/"), pw: pw, tw: tar.NewWriter(pw), done: make(chan error, 1)}
	w.dest = path.Dir(p)
	if isDir && c.ReadonlyRootfs {
		w.dest = p
		w.onto = true
	}
	go func() {
		err := c.CopyTo(ctx, w.dest, pr)
		pr.CloseWithError(err) // unblock the writer if the daemon stopped reading
		w.done <- err
	}()
	return w
}

func (w *pathWriter) write(hdr *tar.Header, r io.Reader) error {
	rename := func(name string) string {
		rest := strings.TrimPrefix(name, w.prefix)
		if w.onto {
			return "." + rest
		}
		return path.Base(w.path) + rest
	}
	hdr.Name = rename(hdr.Name)
	if hdr.Typeflag == tar.TypeLink {
		if !tarpolicy.IsLocalName(hdr.Linkname) || !mountpath.Inside("/"+hdr.Linkname, "/"+w.prefix) {
			return fmt.Errorf("hard link %q points outside %s", hdr.Linkname, w.path)
		}
		hdr.Linkname = rename(hdr.Linkname)
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, w.daemonErr(err))
	}
	if _, err := io.Copy(w.tw, r); err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, w.daemonErr(err))
	}
	return nil
}

// daemonErr prefers the daemon's reason over the pipe's "closed pipe" when both failed.
func (w *pathWriter) daemonErr(err error) error {
	if errors.Is(err, io.ErrClosedPipe) {
		select {
		case derr := <-w.done:
			w.done <- derr
			if derr != nil {
				return derr
			}
		default:
		}
	}
	return err
}

// abort ends the copy into the container with err, so the Engine stops extracting; nil w
// is fine.
func (w *pathWriter) abort(err error) {
	if w == nil {
		return
	}
	w.pw.CloseWithError(err)
	<-w.done
}

func (w *pathWriter) close() error {
	err := w.tw.Close()
	w.pw.CloseWithError(err)
	if derr := <-w.done; derr != nil {
		return fmt.Errorf("restoring %s: %w", w.path, derr)
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", w.path, err)
	}
	return nil
}

// cleanPaths validates absolute container paths, cleans them, drops duplicates and paths
// inside another listed path (the parent's archive already holds them).
func cleanPaths(paths []string) ([]string, error) {
	var clean []string
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("path %q must be absolute (a path inside the container, like /data)", p)
		}
		c := path.Clean(p)
		if c == "/" {
			return nil, fmt.Errorf("path %q would back up the whole container file system: name its data directories instead", p)
		}
		clean = append(clean, c)
	}
	sort.Strings(clean)
	clean = slices.Compact(clean)
	var out []string
	for _, p := range clean {
		if !slices.ContainsFunc(out, func(parent string) bool { return strings.HasPrefix(p, parent+"/") }) {
			out = append(out, p)
		}
	}
	return out, nil
}

// SourceDataPath is the manifest key saying how a volume backup was read: DataPathHost,
// DataPathWorker or DataPathArchive.
const SourceDataPath = "data_path"

// dataPathOf says which data path a worker session is: DataPathWorker unless it says otherwise.
func dataPathOf(s strategy.WorkerSession) string {
	if d, ok := s.(interface{ DataPath() string }); ok {
		return d.DataPath()
	}
	return DataPathWorker
}

// DataPathText says in words how a volume backup was read.
func DataPathText(dp string) string {
	switch dp {
	case DataPathHost:
		return "this host's file system (the volumes read in place, no container)"
	case DataPathWorker:
		return "a worker container beside the data"
	case DataPathArchive:
		return "the Engine's archive API"
	}
	return dp
}

// Data paths of a volume backup.
const (
	DataPathHost    = "host"    // the plugin read the volumes' files on the Engine's host itself
	DataPathWorker  = "worker"  // a worker container beside the data
	DataPathArchive = "archive" // the Engine's archive API
)
