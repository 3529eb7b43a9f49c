// Command incrbench is the bench's driver of the incremental data path until the CLI has it:
// a backup of a directory read in place as the plugin reads a local volume (the worker's
// incremental walk, the parent's metadata, the repository writer), and a restore's stream.
//
//	incrbench backup  -repo DIR -src DIR   # a snapshot; the newest one is its parent
//	incrbench restore -repo DIR            # the newest snapshot as a tar on stdout
//
// The repository is encrypted (age recipient, key files in -repo's parent directory), like
// restic's and borg's in the same bench. Totals go to stderr as JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"filippo.io/age"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/incremental"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/target"
	wtree "github.com/docker-backup/docker-backup/internal/worker/tree"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: incrbench backup|restore -repo DIR [-src DIR]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("repo", "", "the repository's directory")
	src := fs.String("src", "", "the directory backed up (backup)")
	prof := fs.String("cpuprofile", "", "write a CPU profile here")
	memprof := fs.String("memprofile", "", "write a heap profile here (at the end)")
	traceFile := fs.String("trace", "", "write an execution trace here")
	uploads := fs.Int("uploads", 0, "packs stored at once (0: the repository's default)")
	level := fs.String("level", "", "zstd level of new blobs: fastest, default, better (empty: the repository's default)")
	sync := fs.Bool("syncpipe", false, "hand the walk's stream over with io.Pipe (no read-ahead)")
	memLimit := fs.Int("memlimit", 88, "the Go runtime's soft memory limit in MiB (0: none), as the plugin sets it for incremental backups")
	workers := fs.Int("workers", 0, "goroutines hashing, compressing and encrypting (0: every core)")
	fs.Parse(os.Args[2:])
	if *memLimit > 0 {
		debug.SetMemoryLimit(int64(*memLimit) << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fail(err)
		}
		trace.Start(f)
		defer trace.Stop()
	}
	r, err := openRepo(ctx, *dir, repo.Access{Uploads: *uploads, Workers: *workers, Compression: blob.Level(*level)})
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "backup":
		err = backup(ctx, r, *src, *sync)
	case "restore":
		err = restore(ctx, r)
	default:
		err = fmt.Errorf("unknown command %q: use backup or restore", os.Args[1])
	}
	if err != nil {
		pprof.StopCPUProfile()
		fail(err)
	}
	if *memprof != "" {
		f, err := os.Create(*memprof)
		if err != nil {
			fail(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "incrbench:", err)
	os.Exit(1)
}

// openRepo opens the repository in dir, or makes it (encrypted for a new age key kept
// beside it, with a signing key).
func openRepo(ctx context.Context, dir string, a repo.Access) (*repo.Repo, error) {
	if dir == "" {
		return nil, errors.New("-repo is required")
	}
	keys := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return nil, err
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("b"), 32))
	if err != nil {
		return nil, err
	}
	t, err := target.NewLocal(dir)
	if err != nil {
		return nil, err
	}
	a.Signer, a.Trust = signer, artifact.NewKeyring(signer)
	keyFile := filepath.Join(keys, "key")
	if b, err := os.ReadFile(keyFile); err == nil {
		_, a.MasterKey, err = repo.ParseKeyFile(string(b))
		if err != nil {
			return nil, err
		}
		return repo.Open(ctx, t, a)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	var rs crypt.Recipients
	if err := rs.Add(id.Recipient().String()); err != nil {
		return nil, err
	}
	r, err := repo.Init(ctx, t, repo.InitOptions{Recipients: &rs}, a)
	if err != nil {
		return nil, err
	}
	return r, os.WriteFile(keyFile, []byte(r.KeyFile()), 0o600)
}

// newest is the newest snapshot (nil: none).
func newest(ctx context.Context, r *repo.Repo) (*repo.Snapshot, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) == 0 {
		return nil, err
	}
	return snaps[len(snaps)-1], nil
}

func backup(ctx context.Context, r *repo.Repo, src string, syncPipe bool) error {
	start := time.Now()
	phases := map[string]float64{}
	mark := func(name string) { phases[name] = time.Since(start).Seconds() }
	parent, err := newest(ctx, r)
	mark("parent-loaded")
	if err != nil {
		return err
	}
	w, err := r.NewWriter(ctx)
	if err != nil {
		return err
	}
	mark("writer")
	var cur *meta.Cursor
	var finder *tree.Finder
	if parent != nil {
		rd, err := r.NewReader(ctx)
		if err != nil {
			return err
		}
		mr, mw := io.Pipe()
		go func() { mw.CloseWithError(incremental.ParentMetadata(ctx, rd, parent, mw)) }()
		cur = meta.NewCursor(meta.NewDecoder(mr))
		finder = rd.Finder(parent.Tree)
		mark("reader")
	}
	var pr interface {
		io.Reader
		CloseWithError(error) error
	}
	var pw interface {
		io.Writer
		CloseWithError(error) error
	}
	if syncPipe {
		pr, pw = io.Pipe()
	} else {
		pr, pw = incremental.Pipe(8, 1<<20)
	}
	var st *meta.Stats
	walked := make(chan error, 1)
	go func() {
		var err error
		st, err = wtree.ArchiveIncremental(ctx, []wtree.Root{{Dir: filepath.Dir(src), Rel: filepath.Base(src), Name: "data"}}, nil, nil, cur, pw)
		if err == nil && cur != nil {
			err = cur.Drain()
		}
		pw.CloseWithError(err)
		walked <- err
	}()
	_, err = incremental.IngestMarked(ctx, w, pr, finder)
	pr.CloseWithError(err)
	if werr := <-walked; err == nil {
		err = werr
	}
	if err != nil {
		w.Abort(ctx)
		return err
	}
	mark("ingested")
	info := repo.Snapshot{Project: "bench", Service: "files", Strategy: "volume", Paths: []string{"/data"}}
	if parent != nil {
		info.Parent = parent.ID
	}
	s, err := w.Commit(ctx, info)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stderr).Encode(map[string]any{"snapshot": s.ID[:12], "seconds": time.Since(start).Seconds(), "phases": phases, "walk": st, "totals": s.Totals})
}

func restore(ctx context.Context, r *repo.Repo) error {
	s, err := newest(ctx, r)
	if err != nil {
		return err
	}
	if s == nil {
		return errors.New("the repository holds no snapshot")
	}
	rd, err := r.NewReader(ctx)
	if err != nil {
		return err
	}
	return rd.Export(ctx, s, os.Stdout)
}
