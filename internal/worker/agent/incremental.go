//go:build linux

package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

// backupIncremental writes the incremental stream of the paths to out (compressed when the
// request says so), reading the parent's metadata from in as the walk goes, then the rest of
// it (the caller's writes all end), and reports what it read and passed over.
func backupIncremental(ctx context.Context, req Request, in io.Reader, out io.Writer, rep *reporter) error {
	if len(req.Recipients) > 0 {
		return errors.New("an incremental backup's stream is not encrypted in the worker (allowed: no recipients; the repository encrypts)")
	}
	excl, err := exclude.Compile(req.Exclude)
	if err != nil {
		return err
	}
	rep.excluded = len(excl.Patterns())
	var parent *meta.Cursor
	if req.Parent {
		parent = meta.NewCursor(meta.NewDecoder(in))
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	var w io.Writer = bw
	var zw io.WriteCloser
	if req.Compression != "" {
		if zw, err = req.Compression.NewWriter(bw); err != nil {
			return err
		}
		w = zw
	}
	st, err := tree.ArchiveIncremental(ctx, tree.RootsOf(req.Paths), req.Mounts, excl, parent, &countingWriter{w: w, n: &rep.raw})
	if zw != nil {
		if cerr := zw.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("compressing: %w", cerr)
		}
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sending the backup: %w", err)
	}
	if parent != nil {
		if err := parent.Drain(); err != nil {
			return err
		}
	}
	rep.write(Report{Raw: rep.raw.Load(), Done: true, Excluded: rep.excluded, Incremental: st}, true)
	return nil
}
