package snapshots

import (
	"context"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
)

// Volume is the strategy whose snapshots hold files; every other strategy's snapshot holds
// its dump as one file.
const Volume = "volume"

// DumpFile names the one file of a dump's snapshot (ext: the strategy's extension).
func DumpFile(ext string) string { return "dump." + ext }

// Stream writes the raw stream a full backup of s would hold: a volume snapshot's files as a
// PAX tar (only those under paths, when given; names as in the backup's archive), a dump's
// stream as it was. Every blob is verified before its bytes are written.
func Stream(ctx context.Context, rd *repo.Reader, s *repo.Snapshot, paths []string, w io.Writer) error {
	if s.Strategy == Volume {
		ts := tree.NewTarSink(w)
		if err := rd.Restore(ctx, s, paths, ts); err != nil {
			return err
		}
		return ts.Close()
	}
	if len(paths) > 0 {
		return fmt.Errorf("snapshot %s is a %s dump: paths select files of volume snapshots only", ShortID(s.ID), s.Strategy)
	}
	t, err := rd.Tree(ctx, s.Tree)
	if err != nil {
		return err
	}
	if len(t.Nodes) != 1 || t.Nodes[0].Type != tree.File {
		return fmt.Errorf("snapshot %s of the %s strategy holds %d entries, not one dump file", ShortID(s.ID), s.Strategy, len(t.Nodes))
	}
	if _, err := io.Copy(w, rd.Content(ctx, &t.Nodes[0])); err != nil {
		return fmt.Errorf("snapshot %s: %w", ShortID(s.ID), err)
	}
	return nil
}

// Summary is how listings show a snapshot beside full backups: named snapshot:SHORTID, its
// size the bytes it added to the repository.
func Summary(s *repo.Snapshot) artifact.Summary {
	return artifact.Summary{Key: Name(s.ID), Project: s.Project, Service: s.Service, Job: s.Job, Container: s.Container,
		Strategy: s.Strategy, CreatedAt: s.Time, Size: s.Totals.NewStored, RawSize: s.Totals.Bytes, KeyID: s.KeyID, Snapshot: true}
}

// Manifest is what a restore is told of a snapshot: a manifest as its full backup would
// have (no size or checksum of stored bytes: every blob is verified on its own).
func Manifest(s *repo.Snapshot) *artifact.Manifest {
	return &artifact.Manifest{FormatVersion: artifact.FormatVersion, Artifact: Name(s.ID), Strategy: s.Strategy, Project: s.Project,
		Service: s.Service, Job: s.Job, Container: s.Container, Image: s.Image, CreatedAt: s.Time, RawSize: s.Totals.Bytes,
		Compression: artifact.Zstd, Source: s.Source, Contents: s.Contents}
}

// Newest is the newest of snaps (oldest first, as repo.Snapshots gives them) of the service
// (artifact.ServiceName: "project/service") and job; nil when there is none.
func Newest(snaps []*repo.Snapshot, service, job string) *repo.Snapshot {
	for i := len(snaps) - 1; i >= 0; i-- {
		if s := snaps[i]; artifact.ServiceName(s.Project, s.Service, s.Container) == service && s.Job == job {
			return s
		}
	}
	return nil
}
