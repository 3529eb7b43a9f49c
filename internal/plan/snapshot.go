package plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/errkind"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
)

// SnapshotRestore is a snapshot to restore (RestoreSpec.Snapshot): its repository, the
// snapshot (verified: signed by a trusted key) and, of a volume snapshot, which paths.
type SnapshotRestore struct {
	Repo     *repo.Repo
	Snapshot *repo.Snapshot
	// Paths are the snapshot's paths to restore ("data/dir", as its archive names them);
	// empty: all.
	Paths []string
}

// streamOf runs the snapshot's raw stream (snapshots.Stream) into a pipe.
func streamOf(ctx context.Context, rd *repo.Reader, sn *SnapshotRestore) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(snapshots.Stream(ctx, rd, sn.Snapshot, sn.Paths, pw)) }()
	return pr
}

// runSnapshot restores a snapshot the way a full backup is restored: pass 1 reads the whole
// raw stream made from it (every blob verified, the strategy's Check), counting and hashing
// it, before anything in the container is touched; pass 2 makes the stream again into the
// strategy, whose reader ends with io.EOF only once it matched pass 1 to the last byte.
func (r *Restore) runSnapshot(ctx context.Context) error {
	return r.ApplySnapshot(ctx, r.Container, r.Strategy, r.allowed)
}

// ApplySnapshot restores the planned snapshot into c (a verify's scratch copy) with strat,
// writing only inside allowed.
func (r *Restore) ApplySnapshot(ctx context.Context, c *containers.Container, strat strategy.Strategy, allowed []string) error {
	spec, sn := r.spec, r.spec.Snapshot
	if sn == nil {
		return errors.New("no snapshot to apply")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	untouched := func(err error) error {
		return fmt.Errorf("refusing to restore, %s is untouched: %w%w", c, err, errkind.Silent(pipeline.ErrUntouched))
	}
	rd, err := sn.Repo.NewReader(ctx)
	if err != nil {
		return untouched(err)
	}
	data := func(rd io.Reader, size int64) strategy.Data {
		return strategy.Data{Reader: rd, Size: size, Source: r.Manifest.Source, Trusted: r.Trusted, Allowed: allowed}
	}
	if st, ok := strat.(strategy.Stager); ok {
		err := r.applyStaged(ctx, c, st, rd, data(nil, 0))
		if !errors.Is(err, strategy.ErrNoWorker) && !errors.Is(err, strategy.ErrNoRoom) {
			return err
		}
		spec.Log.Info("restoring in two passes: the snapshot verified whole first, then restored in place", "reason", err)
	}
	spec.Log.Info("verifying the snapshot", "snapshot", snapshots.Name(sn.Snapshot.ID))
	first := &summer{h: sha256.New()}
	in := streamOf(ctx, rd, sn)
	src := io.TeeReader(in, first)
	if chk, ok := strat.(strategy.Checker); ok {
		err = chk.Check(ctx, c, data(src, 0))
	}
	if err == nil {
		_, err = io.Copy(io.Discard, src)
	}
	in.Close()
	if err != nil {
		return untouched(err)
	}
	spec.Log.Info("snapshot verified", "bytes", first.n)
	if spec.Applying != nil {
		spec.Applying(ctx)
	}
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	again := streamOf(ctx, rd, sn)
	defer again.Close()
	second := &matcher{r: again, h: sha256.New(), want: first, progress: spec.Progress}
	if err := strat.Restore(ctx, c, data(second, first.n)); err != nil {
		if second.n > 0 {
			return fmt.Errorf("%w%w", err, errkind.Silent(pipeline.ErrStarted))
		}
		return err
	}
	if _, err := io.Copy(io.Discard, second); err != nil {
		return fmt.Errorf("%w%w", err, errkind.Silent(pipeline.ErrStarted))
	}
	return nil
}

// applyStaged restores the snapshot in one pass: the worker unpacks its stream beside the data
// while every blob is verified, and moves it into place only once all of it came. A damaged
// blob fails the stream before anything is moved: the service is untouched. An error wrapping
// strategy.ErrNoWorker or strategy.ErrNoRoom says to restore another way (nothing changed).
func (r *Restore) applyStaged(ctx context.Context, c *containers.Container, st strategy.Stager, rd *repo.Reader, d strategy.Data) error {
	spec, sn := r.spec, r.spec.Snapshot
	untouched := func(err error) error {
		return fmt.Errorf("refusing to restore, %s is untouched: %w%w", c, err, errkind.Silent(pipeline.ErrUntouched))
	}
	spec.Log.Info("restoring beside the data while the snapshot is verified", "snapshot", snapshots.Name(sn.Snapshot.ID))
	in := streamOf(ctx, rd, sn)
	defer in.Close()
	// The stream's size is known only once made: the room checked is the files' bytes and,
	// as a full backup's raw size counts them, each file's and directory's headers (a PAX
	// header, its records and the entry's header, the content padded to 512 bytes).
	t := sn.Snapshot.Totals
	d.Reader, d.Room = in, t.Bytes+(t.Files+t.Dirs+1)*tarEntryRoom
	err := st.RestoreStaged(ctx, c, d, artifact.Uncompressed, spec.Progress, func(ctx context.Context) {
		spec.Log.Info("snapshot verified")
		if spec.Applying != nil {
			spec.Applying(ctx)
		}
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strategy.ErrNoWorker), errors.Is(err, strategy.ErrNoRoom):
		return err
	case errors.Is(err, strategy.ErrUnapplied):
		return untouched(err)
	}
	return fmt.Errorf("%w%w", err, errkind.Silent(pipeline.ErrStarted))
}

// tarEntryRoom bounds what a snapshot's tar stream adds to an entry's content.
const tarEntryRoom = 4 * 512

// summer counts and hashes what is written to it.
type summer struct {
	h hash.Hash
	n int64
}

func (s *summer) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return s.h.Write(p)
}

// matcher reads pass 2's stream, ending with io.EOF only when it is pass 1's to the byte.
type matcher struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	want     *summer
	progress func(int64)
}

func (m *matcher) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	m.n += int64(n)
	if n > 0 && m.progress != nil {
		m.progress(m.n)
	}
	if m.n > m.want.n {
		return n, errors.New("the snapshot's stream is longer than when it was verified")
	}
	if errors.Is(err, io.EOF) && (m.n != m.want.n || !bytes.Equal(m.h.Sum(nil), m.want.h.Sum(nil))) {
		return n, fmt.Errorf("the snapshot's stream differs from the one verified (%d bytes, verified %d)", m.n, m.want.n)
	}
	return n, err
}
