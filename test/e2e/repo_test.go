package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/s3"
	"github.com/minio/minio-go/v7"
)

// TestRepoMinIO runs the incremental repository on a real MinIO: hosts initialising at once
// agree, snapshots with changes restore exactly, an unchanged snapshot uploads no data, a
// flipped byte in a pack is found by check and refused by a restore, and forget + prune keep
// the rest restorable.
func TestRepoMinIO(t *testing.T) {
	ctx := context.Background()
	m := startMinio(t)
	m.bucket("repo")
	t.Setenv("E2E_REPO_ACCESS_KEY_ID", m.user)
	t.Setenv("E2E_REPO_SECRET_ACCESS_KEY", m.secret)
	cfg, err := s3.ParseURL(m.url("repo/shop/incremental"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsEnv = "E2E_REPO"
	tg, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, access := initConcurrently(t, tg)

	files := map[string][]byte{"etc/app.conf": []byte("port=80\n"), "data/big.bin": repoRandom(9<<20, 1), "data/empty": nil}
	for i := range 40 {
		files[fmt.Sprintf("data/small/%02d", i)] = repoRandom(30<<10, uint64(10+i))
	}
	var snaps []*repo.Snapshot
	var states []map[string][]byte
	commit := func() *repo.Snapshot {
		t.Helper()
		s := repoBackup(t, r, files)
		snaps, states = append(snaps, s), append(states, clone(files))
		return s
	}
	commit()
	before := m.objects("repo")
	s2 := commit()
	if s2.Totals.NewBlobs != 0 || len(m.objects("repo")) != len(before)+1 {
		t.Fatalf("an unchanged snapshot stored %d blobs, %d objects", s2.Totals.NewBlobs, len(m.objects("repo"))-len(before))
	}
	files["data/big.bin"] = append(files["data/big.bin"], repoRandom(1<<20, 2)...)
	delete(files, "data/small/07")
	files["data/renamed"] = files["data/small/08"]
	delete(files, "data/small/08")
	s3snap := commit()
	if s3snap.Totals.NewRaw > 3<<20 {
		t.Fatalf("an append of 1 MiB stored %d new bytes", s3snap.Totals.NewRaw)
	}

	// A restoring host: the identity only, no key file.
	reader, err := repo.Open(ctx, tg, repo.Access{Identities: access.Identities, Trust: access.Trust})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range snaps {
		repoCompare(t, reader, s, states[i])
	}
	if res, err := r.Check(ctx, 1); err != nil || res.ReadPacks == 0 {
		t.Fatalf("check: %+v %v", res, err)
	}

	// Forget the first two, prune: the third restores, check passes.
	if err := r.Forget(ctx, snaps[0].ID, snaps[1].ID); err != nil {
		t.Fatal(err)
	}
	res, err := r.Prune(ctx)
	if err != nil || res.DeletedPacks == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	repoCompare(t, reader, snaps[2], states[2])
	if _, err := r.Check(ctx, 1); err != nil {
		t.Fatalf("check after prune: %v", err)
	}
	repoTamper(t, m, r, reader, snaps[2])
}

func initConcurrently(t *testing.T, tg target.Target) (*repo.Repo, repo.Access) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var rs crypt.Recipients
	if err := rs.Add(id.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	ids := &crypt.Identities{}
	if err := ids.AddFile(writeFile(t, id.String())); err != nil {
		t.Fatal(err)
	}
	signer, err := artifact.NewSigningKey(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	access := repo.Access{Signer: signer, Trust: artifact.NewKeyring(signer), Identities: ids, Host: "e2e", PackSize: 2 << 20}
	repos := make([]*repo.Repo, 3)
	var wg sync.WaitGroup
	for i := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := repo.Init(context.Background(), tg, repo.InitOptions{Recipients: &rs}, access)
			if err != nil {
				t.Errorf("host %d: %v", i, err)
			}
			repos[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, r := range repos[1:] {
		if r.ID() != repos[0].ID() {
			t.Fatalf("hosts initialising at once made two repositories: %s and %s", r.ID(), repos[0].ID())
		}
	}
	return repos[0], access
}

// repoBackup stores files (path → content) as a snapshot, directories implied.
func repoBackup(t *testing.T, r *repo.Repo, files map[string][]byte) *repo.Snapshot {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Sorted(maps.Keys(files)) { // depth first: a directory's entries are contiguous
		n := tree.Node{Mode: 0o640, MTime: time.Unix(1_800_000_000, 0)}
		if err := w.AddFile(p, n, bytes.NewReader(files[p])); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.Commit(ctx, repo.Snapshot{Project: "shop", Service: "app", Strategy: "volume"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// repoCompare restores a snapshot as a tar and compares every file's SHA-256.
func repoCompare(t *testing.T, r *repo.Repo, s *repo.Snapshot, want map[string][]byte) {
	t.Helper()
	got, err := repoExport(r, s)
	if err != nil {
		t.Fatalf("snapshot %s: %v", s.ID[:12], err)
	}
	if len(got) != len(want) {
		t.Fatalf("snapshot %s restores %d files, want %d", s.ID[:12], len(got), len(want))
	}
	for p, b := range want {
		if got[p] != sha(b) {
			t.Fatalf("snapshot %s: %s restores with SHA-256 %s, want %s", s.ID[:12], p, got[p], sha(b))
		}
	}
}

func repoExport(r *repo.Repo, s *repo.Snapshot) (map[string]string, error) {
	ctx := context.Background()
	rd, err := r.NewReader(ctx)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := rd.Export(ctx, s, &buf); err != nil {
		return nil, err
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			got[h.Name] = sha(b)
		}
	}
}

// repoTamper flips one byte, on the server, inside a blob the snapshot's big file holds.
func repoTamper(t *testing.T, m *minioServer, r, reader *repo.Repo, s *repo.Snapshot) {
	t.Helper()
	ctx := context.Background()
	rd, err := reader.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := rd.Lookup(ctx, s.Tree, "data/big.bin")
	if err != nil || n == nil {
		t.Fatalf("data/big.bin in the snapshot: %v", err)
	}
	loc, ok := rd.Index().Lookup(n.Content[len(n.Content)/2])
	if !ok {
		t.Fatal("a blob of the snapshot is not indexed")
	}
	packID := loc.Pack.String()
	key := "shop/incremental/data/" + packID[:2] + "/" + packID
	obj, err := m.client.GetObject(ctx, "repo", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[loc.Entry.Offset+loc.Entry.Length/2] ^= 1
	if _, err := m.client.PutObject(ctx, "repo", key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Check(ctx, 1); err == nil || !strings.Contains(err.Error(), packID) {
		t.Fatalf("check of a damaged pack: %v", err)
	}
	if _, err := repoExport(reader, s); err == nil || !strings.Contains(err.Error(), packID) {
		t.Fatalf("restore of a snapshot with a damaged pack: %v (want an error naming the pack)", err)
	}
}

func repoRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func clone(m map[string][]byte) map[string][]byte { return maps.Clone(m) }
