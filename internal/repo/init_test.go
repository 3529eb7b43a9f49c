package repo

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo/tree"
	"github.com/docker-backup/docker-backup/internal/target"
)

// TestConcurrentInit: hosts initialising one repository at once agree on one config, and
// each reads what the other wrote.
func TestConcurrentInit(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		e := newEnv(t, false)
		tg, err := target.Sub(e.target, "other")
		must(t, err)
		rs, ids := ageKeys(t)
		repos := make([]*Repo, 4)
		var wg sync.WaitGroup
		for i := range repos {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := e.access()
				a.MasterKey, a.Identities = nil, ids
				r, err := Init(ctx, tg, InitOptions{Recipients: rs}, a)
				if err != nil {
					t.Errorf("round %d host %d: %v", round, i, err)
					return
				}
				repos[i] = r
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, r := range repos[1:] {
			if r.ID() != repos[0].ID() || string(r.MasterKey()) != string(repos[0].MasterKey()) {
				t.Fatalf("round %d: two repositories (%s, %s) or master keys", round, r.ID(), repos[0].ID())
			}
		}
	}
}

// TestOpenKeys: an encrypted repository opens with its key file or an identity, and refuses
// another repository's key file or no key at all.
func TestOpenKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	r := e.open(nil)
	id, master, err := ParseKeyFile(r.KeyFile())
	must(t, err)
	if id != r.ID() || string(master) != string(e.master) {
		t.Fatal("the key file does not hold the repository's key")
	}
	other := newEnv(t, true)
	if _, err := Open(ctx, e.target, other.access()); err == nil || !strings.Contains(err.Error(), "not its key") {
		t.Fatalf("another repository's key: %v", err)
	}
	a := e.access()
	a.MasterKey = nil
	if _, err := Open(ctx, e.target, a); !errors.Is(err, crypt.ErrNoIdentity) {
		t.Fatalf("no key: %v", err)
	}
	a.Identities = other.ids
	if _, err := Open(ctx, e.target, a); !errors.Is(err, crypt.ErrNoIdentity) {
		t.Fatalf("another identity: %v", err)
	}
	a.Identities = e.ids
	rd := e.open(func(x *Access) { *x = a })
	if _, err := rd.NewWriter(ctx); err != nil {
		t.Fatalf("a host with the identity unwraps the master key and may write: %v", err)
	}
	if _, err := Open(ctx, e.target, Access{}); err == nil {
		t.Fatal("opened without any key")
	}
	if _, err := Open(ctx, mustLocal(t), Access{}); !errors.Is(err, target.ErrNotExist) {
		t.Fatalf("no repository: %v", err)
	}
}

func mustLocal(t *testing.T) target.Target {
	tg, err := target.NewLocal(filepath.Join(t.TempDir(), "empty"))
	must(t, err)
	return tg
}

// TestRestorePaths restores parts of a snapshot: a file, a directory, with their parents.
func TestRestorePaths(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	src := filepath.Join(e.dir, "src")
	write(t, filepath.Join(src, "a/one"), []byte("1"))
	write(t, filepath.Join(src, "a/b/two"), []byte("2"))
	write(t, filepath.Join(src, "c/three"), []byte("3"))
	r := e.open(nil)
	s, err := backupDir(ctx, r, src, nil)
	must(t, err)
	rd, err := r.NewReader(ctx)
	must(t, err)
	var got []string
	sink := sinkFunc(func(p string) { got = append(got, p) })
	must(t, rd.Restore(ctx, s, []string{"a/b", "c/three"}, sink))
	if want := "a a/b a/b/two c c/three"; strings.Join(got, " ") != want {
		t.Fatalf("restored %q, want %q", strings.Join(got, " "), want)
	}
}

// TestHardlinkBeforeTarget: a hard link whose name sorts before its target's (the writer
// saw the target first) restores as the file, and the target as a link to it.
func TestHardlinkBeforeTarget(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	r := e.open(nil)
	w, err := r.NewWriter(ctx)
	must(t, err)
	must(t, w.AddDir("z", tree.Node{Mode: 0o755}))
	must(t, w.AddFile("z/file", nodeFile(), strings.NewReader("shared content")))
	must(t, w.AddDir("a", tree.Node{Mode: 0o755}))
	must(t, w.AddNode("a/link", tree.Node{Type: tree.Hardlink, LinkTarget: "z/file", Mode: 0o644}))
	s, err := w.Commit(ctx, Snapshot{})
	must(t, err)
	b, err := export(ctx, r, s)
	must(t, err)
	tr := tar.NewReader(bytes.NewReader(b))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		c, _ := io.ReadAll(tr)
		got = append(got, fmt.Sprintf("%s:%c:%s:%s", h.Name, h.Typeflag, h.Linkname, c))
	}
	want := "a/:5::|a/link:0::shared content|z/:5::|z/file:1:a/link:"
	if strings.Join(got, "|") != want {
		t.Fatalf("restored %q, want %q", strings.Join(got, "|"), want)
	}
}
