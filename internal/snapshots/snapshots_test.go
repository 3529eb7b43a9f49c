package snapshots

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/target"
)

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{"snapshot:3f2a": "3f2a", "_repository/snapshots/abcd": "abcd", "/_repository/snapshots/ab": "ab"} {
		if got, ok := ParseRef(in); !ok || got != want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"shop/db/db-postgres-x.sql.zst", "snapshot:", "latest", "_repository/config"} {
		if _, ok := ParseRef(in); ok {
			t.Errorf("ParseRef(%q) is a snapshot", in)
		}
	}
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "100%": 1, "0%": 0, "0.25": 0.25} {
		if got, err := ParseShare(in); err != nil || got != want {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"101%", "-1%", "x", "2"} {
		if _, err := ParseShare(in); err == nil {
			t.Errorf("ParseShare(%q) accepted", in)
		}
	}
}

func signer(t *testing.T) *artifact.SigningKey {
	k, err := artifact.NewSigningKey(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEncryptedKeys: a repository made encrypted keeps its key file (0600) in Keys.Dir; a writer
// opens it from there, another host from the given file; a key file of another repository is refused.
func TestEncryptedKeys(t *testing.T) {
	ctx := context.Background()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var rs crypt.Recipients
	if err := rs.Add(id.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	k := signer(t)
	a := repo.Access{Signer: k, Trust: artifact.NewKeyring(k)}
	if _, err := Open(ctx, tg, Keys{}, a); !errors.Is(err, ErrNone) {
		t.Fatalf("Open of an empty target: %v, want ErrNone", err)
	}
	keys := Keys{Dir: filepath.Join(t.TempDir(), "state")}
	r, created, err := OpenOrInit(ctx, tg, &rs, keys, a)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(created)
	if err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(created, r.ID()) || !r.Encrypted() {
		t.Fatalf("key file %q: %v %v (repository %s, encrypted %v)", created, fi, err, r.ID(), r.Encrypted())
	}
	again, made, err := OpenOrInit(ctx, tg, &rs, keys, a)
	if err != nil || made != "" || again.ID() != r.ID() {
		t.Fatalf("second OpenOrInit: %v, made %q, id %s", err, made, again.ID())
	}
	if w, err := again.NewWriter(ctx); err != nil {
		t.Fatalf("a writer from the kept key file: %v", err)
	} else {
		w.Abort(ctx)
	}
	if _, err := Open(ctx, tg, Keys{File: created}, a); err != nil {
		t.Fatalf("opening with the given key file: %v", err)
	}
	if _, err := Open(ctx, tg, Keys{}, a); err == nil {
		t.Fatal("an encrypted repository opened without its key or an identity")
	}
	other, err := target.NewLocal(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenOrInit(ctx, other, &rs, Keys{Dir: t.TempDir()}, a); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, other, Keys{File: created}, a); err == nil || !strings.Contains(err.Error(), "not of") {
		t.Fatalf("another repository's key file: %v, want refused", err)
	}
}

// TestRetain: retention counts only the job's snapshots, keeps the one just written, forgets the
// rest it does not keep and prunes.
func TestRetain(t *testing.T) {
	ctx := context.Background()
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	k := signer(t)
	r, _, err := OpenOrInit(ctx, tg, nil, Keys{}, repo.Access{Signer: k, Trust: artifact.NewKeyring(k)})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var mine []*repo.Snapshot
	for i := range 4 {
		for _, job := range []string{"nightly", "other"} {
			w, err := r.NewWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.AddFile("f", repoNode(), strings.NewReader(strings.Repeat(job, 1000*(i+1)))); err != nil {
				t.Fatal(err)
			}
			s, err := w.Commit(ctx, repo.Snapshot{Project: "shop", Service: "files", Job: job, Strategy: "volume", Time: at.Add(time.Duration(i) * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if job == "nightly" {
				mine = append(mine, s)
			}
		}
	}
	// A backup under way: the snapshots are forgotten, the prune waits.
	busy, err := r.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Retain(ctx, r, "shop/files", "nightly", retention.Policy{Last: 3}, retention.Clock{}, Key(mine[3].ID))
	busy.Abort(ctx)
	if err != nil || !res.Deferred || len(res.Forgotten) != 1 || res.Pruned != nil {
		t.Fatalf("retention beside a backup: %+v, %v; want one forgotten, the prune deferred", res, err)
	}
	res, err = Retain(ctx, r, "shop/files", "nightly", retention.Policy{Last: 2}, retention.Clock{}, Key(mine[3].ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Forgotten) != 1 || res.Forgotten[0] != Key(mine[1].ID) || res.Pruned == nil || res.Pruned.DeletedPacks == 0 {
		t.Fatalf("forgot %v (pruned %+v), want the second oldest of the job, and the packs of both pruned", res.Forgotten, res.Pruned)
	}
	left, err := r.Snapshots(ctx)
	if err != nil || len(left) != 6 {
		t.Fatalf("%d snapshots left (%v), want 6: the other job's untouched", len(left), err)
	}
	if cr, err := r.Check(ctx, 1); err != nil {
		t.Fatalf("check after retention: %v %+v", err, cr)
	}
}

func repoNode() tree.Node { return tree.Node{Mode: 0o644} }
