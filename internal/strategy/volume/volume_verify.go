package volume

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// NewCount digests the file tree of the tar stream (see artifact.TreeDigest).
func (v *Strategy) NewCount() strategy.Count { return strategy.NewStreamCount(treeContents) }

// treeContents digests the entries of a tar stream: their number, the bytes of regular files
// and the tree digest of names, types, modes, owners, link targets and contents.
func treeContents(r io.Reader) (*artifact.Contents, error) {
	var t artifact.TreeDigest
	tr := tar.NewReader(r)
	h := xxhash.New()
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return &artifact.Contents{Files: t.Files, Bytes: t.Bytes, Tree: t.Sum()}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tar stream: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch hdr.Typeflag {
		case tar.TypeDir:
			t.Add(artifact.EntryDir, name, hdr.Mode, hdr.Uid, hdr.Gid, "")
		case tar.TypeReg:
			t.Add(artifact.EntryFile, name, hdr.Mode, hdr.Uid, hdr.Gid, "")
			h.Reset()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", hdr.Name, err)
			}
			t.AddContent(n, h.Sum64())
		case tar.TypeLink:
			t.Add(artifact.EntryFile, name, hdr.Mode, hdr.Uid, hdr.Gid, "")
		case tar.TypeSymlink:
			t.Add(artifact.EntrySymlink, name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname)
		default:
			t.Add(artifact.EntryOther, name, hdr.Mode, hdr.Uid, hdr.Gid, fmt.Sprintf("%c %d %d", hdr.Typeflag, hdr.Devmajor, hdr.Devminor))
		}
	}
}

// NeedsServer: files are written into the scratch container without starting it.
func (v *Strategy) NeedsServer() bool { return false }

// Ready has nothing to wait for.
func (v *Strategy) Ready(context.Context, *containers.Container, strategy.Source) error { return nil }

// Found digests the restored paths as Backup's stream was digested, leaving out what the
// backup left out (what a fresh volume holds from its image, say): in a worker beside the
// data when there is one (nothing crosses the Engine's API), else through the archive API.
func (v *Strategy) Found(ctx context.Context, c *containers.Container, src strategy.Source, _ *artifact.Contents) (*artifact.Contents, error) {
	paths, err := cleanPaths(strings.Split(src[SourcePaths], ","))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("the manifest names no paths to look at (%q)", src[SourcePaths])
	}
	excl, err := exclude.Compile(Excluded(src))
	if err != nil {
		return nil, fmt.Errorf("the manifest's exclusions: %w", err)
	}
	if v.Worker != nil || v.RequireWorker {
		s, err := v.openWorker(ctx, c, paths, strategy.WorkerAccess{})
		if err == nil {
			defer s.Close()
			found, err := s.Count(ctx, excl.Patterns())
			if err != nil {
				return nil, strategy.StepErr(c, "count", err)
			}
			return found, nil
		}
		if !errors.Is(err, strategy.ErrNoWorker) {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for _, p := range paths {
			if err = copyPathOut(ctx, c, p, excl, tw); err != nil {
				break
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	found, err := treeContents(pr)
	pr.CloseWithError(errors.New("digest ended"))
	return found, err
}
