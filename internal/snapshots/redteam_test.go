package snapshots

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/retention"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/klauspost/compress/zstd"
)

// TestRedteamDuplicateSnapshotRetention: in an unencrypted repository a snapshot's signature
// covers its "snapshot" member only, and its ID is the hash of the stored bytes: the same
// signed snapshot re-encoded (white space after the envelope, another zstd frame) is another
// valid snapshot with another ID. Whoever may Put (no delete right) adds copies of the newest
// snapshot; retention (keep the last 3) then counts the copies and forgets the genuine older
// snapshots, and its prune deletes their data.
func TestRedteamDuplicateSnapshotRetention(t *testing.T) {
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
	for i := range 3 {
		w, err := r.NewWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddFile("f", repoNode(), strings.NewReader(strings.Repeat("v", 1000*(i+1)))); err != nil {
			t.Fatal(err)
		}
		s, err := w.Commit(ctx, repo.Snapshot{Project: "shop", Service: "files", Job: "nightly", Strategy: "volume", Time: at.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, s)
	}
	// The attacker: two copies of the newest snapshot under new IDs.
	sub, _ := Of(tg)
	rc, err := sub.Get(ctx, "snapshots/"+mine[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	dec, _ := zstd.NewReader(nil)
	plain, err := dec.DecodeAll(stored, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	for _, pad := range []string{" ", "\n"} {
		b := enc.EncodeAll(append(bytes.Clone(plain), pad...), nil)
		sum := sha256.Sum256(b)
		if _, err := sub.Put(ctx, "snapshots/"+hex.EncodeToString(sum[:]), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := r.Snapshots(ctx)
	t.Logf("%d snapshots listed (3 made), error %v", len(snaps), err)

	// The next nightly run: keep the last 3 (the one just written is the newest).
	res, err := Retain(ctx, r, "shop/files", "nightly", retention.Policy{Last: 3}, retention.Clock{}, Key(mine[2].ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range mine[:2] {
		if slices.Contains(res.Forgotten, Key(s.ID)) {
			t.Errorf("retention (keep the last 3 of 3 genuine snapshots) forgot genuine snapshot %s: copies of the newest were counted", ShortID(s.ID))
		}
	}
}
