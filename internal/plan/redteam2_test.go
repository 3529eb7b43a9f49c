package plan

// Red-team round 2: a snapshot restored in one pass (applyStaged). Each test states the
// property it expects; on the code it was written against it FAILS.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// stagerFake is a volume strategy whose staged restore reads the whole stream, as the worker
// unpacking it beside the data would, and records what it was asked for.
type stagerFake struct {
	room, size, read int64
	err              error
}

func (s *stagerFake) Name() string      { return "volume" }
func (s *stagerFake) Extension() string { return "tar" }
func (s *stagerFake) Backup(context.Context, *containers.Container, io.Writer) (strategy.Source, error) {
	return nil, fmt.Errorf("not here")
}
func (s *stagerFake) Restore(ctx context.Context, c *containers.Container, d strategy.Data) error {
	_, err := io.Copy(io.Discard, d)
	return err
}
func (s *stagerFake) RestoreStaged(ctx context.Context, c *containers.Container, d strategy.Data, comp artifact.Compression, progress func(int64), staged func(context.Context)) error {
	s.room, s.size = d.Room, d.Size
	s.read, s.err = io.Copy(io.Discard, d.Reader)
	if s.err != nil {
		return fmt.Errorf("%w%w", s.err, strategy.ErrUnapplied)
	}
	staged(ctx)
	return nil
}

// snapshotOf stores files (name → content) as a volume snapshot of a fresh repository.
func snapshotOf(t *testing.T, files map[string][]byte) (*repo.Repo, *repo.Snapshot) {
	t.Helper()
	ctx := context.Background()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "t"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, tg, repo.InitOptions{}, repo.Access{Signer: signer, Trust: artifact.NewKeyring(signer), Host: "test", PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	if err := w.AddDir("data", tree.Node{Type: tree.Dir, Mode: 0o755, MTime: now}); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := w.AddFile("data/"+name, tree.Node{Type: tree.File, Mode: 0o644, Size: int64(len(b)), MTime: now}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.Commit(ctx, repo.Snapshot{Project: "shop", Service: "files", Strategy: snapshots.Volume, Paths: []string{"/data"},
		Source: strategy.Source{"paths": "/data"}})
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// TestRedteam2StagedSnapshotRoomUnderstated: a staged restore stages beside the service's
// live data, while it runs; the room it checks first is what keeps it from filling the
// service's volume. A full backup's check is its raw tar stream (headers included, 512 bytes
// an entry at least) and a twentieth more; a snapshot's is Totals.Bytes, the files' content
// alone. A snapshot of many small files (a mail spool, a cache, a git repository) passes a
// check for a fraction of what staging it writes: here the stream is more than 20 times the
// room checked, while a full backup of the same files would have checked the whole stream.
func TestRedteam2StagedSnapshotRoomUnderstated(t *testing.T) {
	files := map[string][]byte{}
	for i := range 2000 {
		files[fmt.Sprintf("f%05d", i)] = []byte(fmt.Sprintf("small file %d\n", i))
	}
	rp, s := snapshotOf(t, files)
	fake := &stagerFake{}
	r := &Restore{Manifest: snapshots.Manifest(s), Trusted: true,
		spec: RestoreSpec{Snapshot: &SnapshotRestore{Repo: rp, Snapshot: s}, Log: slog.New(slog.DiscardHandler)}}
	if err := r.ApplySnapshot(context.Background(), &containers.Container{Name: "files"}, fake, nil); err != nil {
		t.Fatal(err)
	}
	if fake.read == 0 {
		t.Fatal("the staged path did not run: the scenario proves nothing")
	}
	// What the worker checks the room for (restoreStaged: Size, else Room).
	room := fake.size
	if room == 0 {
		room = fake.room
	}
	if room < fake.read {
		t.Errorf("the staged restore of a snapshot checks for %d bytes of room, but its stream is %d bytes (%d entries): a full backup of the same files checks for the whole stream", room, fake.read, len(files)+1)
	}
}
