package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// TestTamperedPack: one byte flipped in a data pack is found by Check(1) and refused by a
// restore, in plain and encrypted repositories.
func TestTamperedPack(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, enc)
			src := filepath.Join(e.dir, "src")
			content := randomBytes(100<<10, 5)
			write(t, filepath.Join(src, "f"), content)
			r := e.open(nil)
			s, err := backupDir(ctx, r, src, nil)
			must(t, err)
			if _, err := r.Check(ctx, 1); err != nil {
				t.Fatalf("check before: %v", err)
			}
			rd, err := r.NewReader(ctx)
			must(t, err)
			n, err := rd.Lookup(ctx, s.Tree, "f")
			must(t, err)
			loc, _ := rd.idx.Lookup(n.Content[0])
			p := filepath.Join(e.dir, "repo/shop/repo", packKey(loc.Pack))
			b, err := os.ReadFile(p)
			must(t, err)
			b[loc.Entry.Offset+loc.Entry.Length/2] ^= 1
			must(t, os.WriteFile(p, b, 0o600))

			_, err = r.Check(ctx, 1)
			if err == nil || !strings.Contains(err.Error(), loc.Pack.String()) {
				t.Fatalf("check of a damaged pack: %v (want an error naming pack %s)", err, loc.Pack)
			}
			if _, err := r.Check(ctx, 0); err != nil {
				t.Fatalf("check without reading data (the size is unchanged): %v", err)
			}
			out, err := export(ctx, r, s)
			if err == nil {
				t.Fatal("a damaged pack was restored")
			}
			if bytes.Contains(out, content[:64]) {
				t.Fatal("bytes of the damaged blob reached the sink")
			}
			// The pack's hash is not all: a blob that decrypts/decompresses to other content
			// is refused by its ID too.
			if _, err := r.keys.Decode(nil, b[loc.Entry.Offset:loc.Entry.Offset+loc.Entry.Length], loc.Entry.Comp, int(loc.Entry.Raw), loc.Entry.ID); !errors.Is(err, blob.ErrAuth) {
				t.Fatalf("decoding the damaged blob: %v, want ErrAuth", err)
			}
		})
	}
}

// TestTamperedSnapshot: a snapshot changed, unsigned, or signed by an untrusted key is refused.
func TestTamperedSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "f"), []byte("x"))
	r := e.open(nil)
	s, err := backupDir(ctx, r, src, nil)
	must(t, err)
	p := filepath.Join(e.dir, "repo/shop/repo/snapshots", s.ID)

	// Changed: stored under the hash of its new content, so only the signature can tell.
	other, err := artifact.NewSigningKey(bytes.Repeat([]byte("o"), 32))
	must(t, err)
	forged := e.open(func(a *Access) { a.Signer = other })
	fw, err := forged.NewWriter(ctx)
	must(t, err)
	must(t, fw.AddFile("evil", nodeFile(), strings.NewReader("evil")))
	fs, err := fw.Commit(ctx, Snapshot{Project: "shop"})
	must(t, err)
	if _, err := r.LoadSnapshot(ctx, fs.ID); !errors.Is(err, ErrRefused) || !errors.Is(err, artifact.ErrOtherKey) {
		t.Fatalf("a snapshot signed by an untrusted key: %v", err)
	}

	stored, err := os.ReadFile(p)
	must(t, err)
	plain, err := r.keys.Decompress(stored, 1<<20)
	must(t, err)
	for name, edit := range map[string]func([]byte) []byte{
		"host changed": func(b []byte) []byte { return bytes.Replace(b, []byte(`"host":"test"`), []byte(`"host":"evil"`), 1) },
		"unsigned": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"signature":{`), []byte(`"signature":null,"x":{`), 1)
		},
	} {
		changed := edit(bytes.Clone(plain))
		if bytes.Equal(changed, plain) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		b := r.keys.Compress(changed)
		id := blob.Sum(b).String()
		must(t, os.WriteFile(filepath.Join(filepath.Dir(p), id), b, 0o600))
		_, err := r.LoadSnapshot(ctx, id)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: %v, want refused", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// A byte flipped in place: its name no longer matches.
	stored[len(stored)/2] ^= 1
	must(t, os.WriteFile(p, stored, 0o600))
	if _, err := r.LoadSnapshot(ctx, s.ID); !errors.Is(err, ErrRefused) {
		t.Fatalf("a damaged snapshot: %v", err)
	}
	snaps, err := r.Snapshots(ctx)
	if err == nil || len(snaps) != 0 {
		t.Fatalf("listing: %d snapshots, error %v (want none trusted, and errors)", len(snaps), err)
	}
}
