package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental"
	"github.com/docker-backup/docker-backup/internal/pipeline"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
)

// Incremental makes a backup a snapshot in the target's repository (package snapshots)
// instead of a full artifact.
type Incremental struct {
	// Keys are where the repository's key file is kept (made on first use when encrypted).
	Keys snapshots.Keys
	// Trust verifies the snapshots the parent is chosen from (the signer's own key included).
	Trust *artifact.Keyring
}

// IncrementalIf is an Incremental with keys and trust when on (a job's label says so), else nil.
func IncrementalIf(on bool, keys snapshots.Keys, trust *artifact.Keyring) *Incremental {
	if !on {
		return nil
	}
	return &Incremental{Keys: keys, Trust: trust}
}

// incrementalTarget is the one target of an incremental backup, with its name.
func (b *Backup) incrementalTarget() (string, target.Target, error) {
	switch t := b.spec.Targets; {
	case len(t) == 1:
		return t[0].Name, t[0].Target, nil
	case len(t) > 1:
		return "", nil, errors.New("an incremental backup goes to one target (its repository): give one target")
	case b.spec.Target == nil:
		return "", nil, errors.New("an incremental backup needs a target")
	}
	return b.spec.Target.String(), b.spec.Target, nil
}

// snapshot runs an incremental backup: the strategy's raw stream is ingested into a new
// snapshot whose parent is the newest of the same service and job. Nothing is published
// unless the strategy and the ingestion both succeeded.
func (b *Backup) snapshot(ctx context.Context) (*pipeline.BackupResult, error) {
	spec, c, log := b.spec, b.Container, b.spec.Log
	started := time.Now()
	name, tg, err := b.incrementalTarget()
	if err != nil {
		return nil, err
	}
	r, created, err := snapshots.OpenOrInit(ctx, tg, spec.Encrypt, spec.Incremental.Keys,
		repo.Access{Signer: spec.Signer, Trust: spec.Incremental.Trust, Log: log})
	if err != nil {
		return nil, err
	}
	if created != "" {
		log.Info("made an encrypted repository: its key file is needed to write to it from another host ("+snapshots.EnvKeyFile+")", "repository", r.ID(), "key_file", created)
	}
	if !spec.Encrypt.Empty() && !r.Encrypted() {
		return nil, fmt.Errorf("the repository in %s is not encrypted, but encryption was asked for: back up to another target (or prefix) for an encrypted repository", tg)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		log.Warn("snapshots that cannot be verified are not a parent", "error", err)
	}
	info := repo.Snapshot{Project: c.Project, Service: c.Service, Job: spec.Job, Container: c.Name, Image: c.Image, Strategy: b.Strategy.Name()}
	parent := snapshots.Newest(snaps, artifact.ServiceName(c.Project, c.Service, c.Name), spec.Job)
	w, err := r.NewWriter(ctx)
	if err != nil {
		return nil, err
	}
	info.Source, info.Contents, err = b.ingestSnapshot(ctx, w, parent, started)
	if errors.Is(err, repo.ErrNotInRepository) {
		// The parent's content is not all in the repository any more: every file read.
		log.Warn("the parent snapshot's content is not all in the repository: backing up without a parent", "parent", snapshots.ShortID(parent.ID), "error", err)
		w.Abort(ctx)
		if w, err = r.NewWriter(ctx); err != nil {
			return nil, err
		}
		parent = nil
		info.Source, info.Contents, err = b.ingestSnapshot(ctx, w, nil, started)
	}
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	if parent != nil {
		info.Parent = parent.ID
	}
	s, err := w.Commit(ctx, info)
	if err != nil {
		return nil, err
	}
	m := snapshots.Manifest(s)
	m.Size, m.DurationMS = s.Totals.NewStored, time.Since(started).Milliseconds()
	return &pipeline.BackupResult{Key: snapshots.Key(s.ID), Manifest: m, Duration: time.Since(started), Stored: []string{name}, Snapshot: s}, nil
}

// ingestSnapshot streams the strategy's backup into w, what changed since parent (nil: none)
// when the strategy can tell (a volume read in place or by a worker), else all of it.
func (b *Backup) ingestSnapshot(ctx context.Context, w *repo.Writer, parent *repo.Snapshot, at time.Time) (strategy.Source, *artifact.Contents, error) {
	if cf, ok := b.Strategy.(changedFiles); ok {
		src, contents, err := b.ingestChanged(ctx, w, cf, parent)
		if !errors.Is(err, errNoWalk) {
			return src, contents, err
		}
		b.spec.Log.Info("an incremental backup reads the volumes through the Engine's archive API: every file is read", "reason", err)
	}
	var finder *tree.Finder
	if parent != nil {
		finder = w.Finder(parent.Tree)
	}
	return b.ingest(ctx, w, finder, at)
}

// ingest streams the strategy's backup into w: a volume's tar as files, a dump as one file;
// a strategy.Counter counts what it holds meanwhile.
func (b *Backup) ingest(ctx context.Context, w *repo.Writer, parent *tree.Finder, at time.Time) (strategy.Source, *artifact.Contents, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type result struct {
		src strategy.Source
		err error
	}
	done := make(chan result, 1)
	out := io.Writer(pw)
	var count strategy.Count
	if c, ok := b.Strategy.(strategy.Counter); ok {
		count = c.NewCount()
		out = io.MultiWriter(pw, count)
	}
	go func() {
		src, err := b.Strategy.Backup(ctx, b.Container, out)
		pw.CloseWithError(err)
		done <- result{src, err}
	}()
	in := io.Reader(pr)
	if b.spec.Progress != nil {
		in = &progressReader{r: pr, fn: b.spec.Progress}
	}
	var err error
	if b.Strategy.Name() == snapshots.Volume {
		err = incremental.Ingest(ctx, w, in, parent)
	} else {
		err = incremental.IngestStream(ctx, w, snapshots.DumpFile(b.Strategy.Extension()), in, at)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // what follows a tar's end, if anything
	}
	if err != nil {
		pr.CloseWithError(err)
		cancel()
	}
	res := <-done
	var contents *artifact.Contents
	if count != nil {
		var cerr error
		if contents, cerr = count.Contents(); res.err == nil && err == nil && cerr != nil {
			return nil, nil, fmt.Errorf("the backup of %s: %w", b.Container, cerr)
		}
	}
	if res.err != nil {
		return nil, nil, res.err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ingesting the backup of %s into the repository: %w", b.Container, err)
	}
	return res.src, contents, nil
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.fn(p.n)
	}
	return n, err
}
