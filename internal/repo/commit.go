package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Commit finishes the snapshot described by info (Time and Host default to now and the
// access's host; Tree and Totals are set): the remaining packs are uploaded, then an index file of this
// snapshot's packs, then (if the lock is still valid) the signed snapshot. Nothing refers to a
// pack before it is stored, nor to an index entry before its index file is.
func (w *Writer) Commit(ctx context.Context, info Snapshot) (*Snapshot, error) {
	s, err := w.commit(ctx, info)
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	return s, nil
}

func (w *Writer) commit(ctx context.Context, info Snapshot) (*Snapshot, error) {
	if w.done {
		return nil, errors.New("the snapshot is already committed or aborted")
	}
	root, err := w.trees.Finish()
	if err != nil {
		return nil, err
	}
	w.hashes.Close()
	packs, stats, err := w.pipe.Finish()
	if err != nil {
		return nil, err
	}
	w.done = true
	defer w.lock.Release(ctx)
	if err := w.r.hook(ctx, "backup.packs-uploaded"); err != nil {
		return nil, err
	}
	if _, err := w.r.writeIndex(ctx, packs); err != nil {
		return nil, err
	}
	if err := w.r.hook(ctx, "backup.index-written"); err != nil {
		return nil, err
	}
	s := info
	s.ID, s.KeyID, s.Tree = "", "", root
	if s.Time.IsZero() {
		s.Time = w.r.a.Now()
	}
	if s.Host == "" {
		s.Host = w.r.a.Host
	}
	s.Time = s.Time.UTC()
	s.Paths, s.Tags = slices.Clone(s.Paths), slices.Clone(s.Tags)
	s.Totals = w.totals
	s.Totals.Dirs = w.trees.Dirs
	s.Totals.NewBlobs, s.Totals.NewRaw, s.Totals.NewStored, s.Totals.Packs = stats.Blobs, stats.Raw, stats.Stored, stats.Packs
	if err := w.lock.Valid(); err != nil {
		return nil, err
	}
	b, err := w.r.encodeSnapshot(&s)
	if err != nil {
		return nil, err
	}
	s.ID = blob.Sum(b).String()
	if err := w.r.obj.Put(ctx, "snapshots/"+s.ID, b, false); err != nil {
		return nil, err
	}
	s.KeyID = w.r.a.Signer.ID()
	if err := w.r.hook(ctx, "backup.snapshot-written"); err != nil {
		return nil, err
	}
	w.r.a.Log.Info("snapshot committed", "repository", w.r.cfg.ID, "snapshot", s.ID[:12], "files", s.Totals.Files,
		"new_blobs", s.Totals.NewBlobs, "new_stored", s.Totals.NewStored)
	return &s, nil
}

// Abort gives up the snapshot: nothing is published; packs already uploaded stay until a
// prune removes them.
func (w *Writer) Abort(ctx context.Context) {
	if !w.done {
		w.done = true
		w.hashes.Close()
		w.pipe.Abort(fmt.Errorf("the backup was aborted"))
		w.lock.Release(ctx)
	}
}
