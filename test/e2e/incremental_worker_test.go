package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/incremental"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/scratch"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/target"
	volumeworker "github.com/docker-backup/docker-backup/internal/worker"
	"github.com/docker-backup/docker-backup/internal/worker/workerimage"
	"github.com/moby/moby/client"
)

// TestIncrementalWorker: a worker container beside a real volume makes an incremental
// backup's stream, over its socket and over the attach stream: the first reads every file,
// the next (1.5 % changed: appended to, a new file, one deleted) only the changed ones, given
// the parent's metadata; each snapshot holds exactly the volume's files.
func TestIncrementalWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProject(t)
	vol := p.volume("data")
	docker(t, "run", "--rm", "--log-driver", "none", "-v", vol+":/data", plainImage, "sh", "-c",
		`set -e; mkdir -p /data/d; i=1; while [ $i -le 30 ]; do head -c $((i*3000)) /dev/urandom > /data/d/f$i; i=$((i+1)); done
		 head -c 3000000 /dev/urandom > /data/big; ln /data/d/f1 /data/hard; ln -s d/f2 /data/sym`)
	svc := p.service("files", pauseImage, "-v", vol+":/data")
	api, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	c, err := containers.Inspect(ctx, api, svc)
	if err != nil {
		t.Fatal(err)
	}
	img := importWorkerImage(t)
	r := incrRepo(t)
	runner := func(socket bool) *volumeworker.Runner {
		w := &volumeworker.Runner{Engine: api, Owner: scratch.ProcessOwner(), Image: func(context.Context) (workerimage.Image, error) { return img, nil }}
		if socket {
			w.Channel = func(context.Context) (*volumeworker.Channel, error) { return volumeworker.HostChannel(), nil }
		}
		return w
	}
	listing := func() string {
		out := docker(t, "run", "--rm", "--log-driver", "none", "-v", vol+":/data:ro", plainImage, "sh", "-c", `cd /data && find . -type f | sort | xargs sha256sum`)
		return strings.TrimSpace(out)
	}

	s1, st := incrBackup(t, r, runner(true), c, nil)
	if st.Read != 31 || st.Unchanged != 0 {
		t.Fatalf("first backup: %+v, want 31 files read", st)
	}
	if got, want := snapshotListing(t, r, s1), listing(); got != want {
		t.Fatalf("first snapshot:\n%s\nthe volume:\n%s", got, want)
	}
	docker(t, "run", "--rm", "--log-driver", "none", "-v", vol+":/data", plainImage, "sh", "-c",
		`set -e; head -c 50000 /dev/urandom >> /data/big; head -c 100000 /dev/urandom > /data/d/new; rm /data/d/f3`)
	s2, st := incrBackup(t, r, runner(false), c, s1)
	if st.Read != 2 || st.Unchanged != 29 || s2.Totals.ReusedFiles != 29 {
		t.Fatalf("second backup (attach stream): %+v, totals %+v: want big and d/new read, 29 unchanged", st, s2.Totals)
	}
	if got, want := snapshotListing(t, r, s2), listing(); got != want {
		t.Fatalf("second snapshot:\n%s\nthe volume:\n%s", got, want)
	}
	s3, st := incrBackup(t, r, runner(true), c, s2)
	if st.Read != 0 || s3.Tree != s2.Tree {
		t.Fatalf("third backup, nothing changed: %+v, tree %s (want %s): want nothing read, the same tree", st, s3.Tree, s2.Tree)
	}
	res, err := r.Check(ctx, 1)
	if err != nil || len(res.Problems) > 0 {
		t.Fatalf("check: %+v, %v", res, err)
	}
	noWorkersLeft(t, p.name, "files")
}

// importWorkerImage imports the static plugin binary as a worker image, as the plugin does.
func importWorkerImage(t *testing.T) workerimage.Image {
	t.Helper()
	b, err := os.ReadFile(pluginBinary)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	ref := "docker-backup-worker-e2e:" + hex.EncodeToString(sum[:8])
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "docker-backup", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg})
	tw.Write(b)
	tw.Close()
	cmd := exec.Command("docker", "import", "-", ref)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("importing the worker image: %v\n%s", err, out)
	}
	return workerimage.Image{Ref: ref, Entrypoint: []string{"/docker-backup", workerimage.Command}}
}

func incrRepo(t *testing.T) *repo.Repo {
	t.Helper()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("e"), 32))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), tg, repo.InitOptions{}, repo.Access{Signer: signer, Trust: artifact.NewKeyring(signer), Host: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// incrBackup makes a snapshot of the service's /data through a worker session, with parent's
// metadata when there is one.
func incrBackup(t *testing.T, r *repo.Repo, runner *volumeworker.Runner, c *containers.Container, parent *repo.Snapshot) (*repo.Snapshot, *meta.Stats) {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var work strategy.IncrementalWork
	var finder *tree.Finder
	if parent != nil {
		rd, err := r.NewReader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mr, mw := io.Pipe()
		go func() { mw.CloseWithError(incremental.ParentMetadata(ctx, rd, parent, mw)) }()
		work.Parent = mr
		finder = rd.Finder(parent.Tree)
	}
	sess, err := runner.Open(ctx, c, []string{"/data"}, strategy.WorkerAccess{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	iw, ok := sess.(strategy.IncrementalWorker)
	if !ok {
		t.Fatalf("the worker session %T makes no incremental stream", sess)
	}
	pr, pw := io.Pipe()
	ingested := make(chan error, 1)
	go func() {
		_, err := incremental.IngestMarked(ctx, w, pr, finder)
		pr.CloseWithError(err)
		ingested <- err
	}()
	st, err := iw.BackupIncremental(ctx, work, pw, nil)
	pw.CloseWithError(err)
	if ierr := <-ingested; err == nil {
		err = ierr
	}
	if err != nil {
		w.Abort(ctx)
		t.Fatal(err)
	}
	info := repo.Snapshot{Project: "e2e", Service: "files", Strategy: "volume", Paths: []string{"/data"}}
	if parent != nil {
		info.Parent = parent.ID
	}
	s, err := w.Commit(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// snapshotListing is `sha256sum` of the snapshot's regular files as find lists them in /data
// (a hard link's content under each name).
func snapshotListing(t *testing.T, r *repo.Repo, s *repo.Snapshot) string {
	t.Helper()
	rd, err := r.NewReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rd.Export(context.Background(), s, &buf); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	var lines []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "./" + strings.TrimPrefix(strings.Trim(h.Name, "/"), "data/")
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			s := sha256.Sum256(b)
			sums[name] = hex.EncodeToString(s[:])
		case tar.TypeLink:
			sums[name] = sums["./"+strings.TrimPrefix(strings.Trim(h.Linkname, "/"), "data/")]
		default:
			continue
		}
		lines = append(lines, name)
	}
	sort.Strings(lines)
	for i, name := range lines {
		lines[i] = fmt.Sprintf("%s  %s", sums[name], name)
	}
	return strings.Join(lines, "\n")
}
