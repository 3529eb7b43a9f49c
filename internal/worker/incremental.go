package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/worker/agent"
)

var _ strategy.IncrementalWorker = (*session)(nil)

// BackupIncremental runs the worker's incremental backup: req.Parent goes to the worker as it
// walks, the plain incremental tar comes to out. Over the socket the tar comes as it is (a
// pipe's cost); over the attach stream (a remote engine) it is compressed in the worker and
// decompressed here.
func (s *session) BackupIncremental(ctx context.Context, req strategy.IncrementalWork, out io.Writer, progress func(int64)) (*meta.Stats, error) {
	r := agent.Request{Op: agent.OpBackup, Incremental: true, Parent: req.Parent != nil, Paths: s.paths, Mounts: s.mounts,
		Exclude: req.Exclude, Socket: s.socket}
	dst, finish := out, func() error { return nil }
	if s.ln == nil {
		r.Compression = artifact.Zstd
		dst, finish = decompressTo(out)
	}
	rep, err := s.run(ctx, r, req.Parent, dst, progress, nil)
	if ferr := finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	if rep.Incremental == nil {
		return nil, fmt.Errorf("the worker made a full backup's stream, not an incremental one (its image is of a release without incremental backups): use a worker of this release (%s=on with this release's image)", EnvMode)
	}
	if rep.Excluded != len(req.Exclude) {
		return nil, fmt.Errorf("the worker applied %d of the %d exclusion patterns (its image is of an older release): use a worker of this release", rep.Excluded, len(req.Exclude))
	}
	return rep.Incremental, nil
}

// decompressTo returns a writer of a zstd stream whose decompressed bytes go to out, and a
// finish that waits until all of them went (or says why not).
func decompressTo(out io.Writer) (io.Writer, func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		zr, err := artifact.Zstd.NewReader(pr)
		if err == nil {
			_, err = io.CopyBuffer(out, zr, make([]byte, 1<<20))
			zr.Close()
		}
		pr.CloseWithError(err) // the worker's stream stops with an error here
		done <- err
	}()
	return pw, func() error {
		pw.Close()
		if err := <-done; err != nil {
			return fmt.Errorf("decompressing the worker's incremental stream: %w", err)
		}
		return nil
	}
}

// transferIncremental sends the parent's metadata (nil: none) to the worker while its stream
// comes to out, over the socket.
func (s *session) transferIncremental(conn *net.UnixConn, parent io.Reader, out io.Writer) error {
	sent := make(chan error, 1)
	go func() {
		var err error
		if parent != nil {
			_, err = io.Copy(conn, parent)
		}
		if cerr := conn.CloseWrite(); err == nil {
			err = cerr
		}
		sent <- err
	}()
	if _, err := io.CopyBuffer(out, conn, make([]byte, 1<<20)); err != nil {
		s.kill()
		return err
	}
	if err := <-sent; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("sending the parent snapshot's metadata to the worker: %w", err)
	}
	return nil
}
