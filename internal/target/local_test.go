package target

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateKey(t *testing.T) {
	good := []string{"a", "p/s/x.sql.zst", "p/s/ünï.tar.gz"}
	bad := []string{"", "/abs", "../up", "a/../../b", "a/./b", "a//b", "a/", `a\b`, ".hidden", "p/.tmp", "a\x00b", "a\nb"}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	for _, k := range bad {
		if err := ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) accepted", k)
		}
	}
}

func TestLocalPutGetListDelete(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "backups")
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Put(ctx, "p/s/a.bin", strings.NewReader("hello"))
	if err != nil || n != 5 {
		t.Fatalf("Put = %d, %v", n, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "p"): 0o700, filepath.Join(dir, "p/s"): 0o700, filepath.Join(dir, "p/s/a.bin"): 0o600} {
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, info.Mode().Perm(), err, want)
		}
	}
	rc, err := l.Get(ctx, "p/s/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Errorf("Get = %q", b)
	}
	if _, err := l.Put(ctx, "p/s/a.bin", strings.NewReader("other")); !errors.Is(err, ErrExist) {
		t.Errorf("overwriting Put = %v, want ErrExist", err)
	}
	if _, err := l.Get(ctx, "p/s/missing"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get(missing) = %v, want ErrNotExist", err)
	}
	objs, err := Collect(l.List(ctx, "p/"))
	if err != nil || len(objs) != 1 || objs[0].Key != "p/s/a.bin" || objs[0].Size != 5 {
		t.Errorf("List = %+v, %v", objs, err)
	}
	if err := l.Delete(ctx, "p/s/a.bin"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, "p/s/a.bin"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func TestLocalFailedPutLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	_, err := l.Put(context.Background(), "p/s/x", &failingReader{after: 100000})
	if err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Fatalf("Put = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, "p/s/y", strings.NewReader("data")); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("failed Puts left files: %v", files)
	}
}

func TestLocalRefusesEscapes(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.Mkdir(outside, 0o700)
	dir := filepath.Join(base, "backups")
	l, _ := NewLocal(dir)
	// A symbolic link inside the target that points outside it must not be followed.
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Put(ctx, "link/x", strings.NewReader("data")); err == nil {
		t.Error("Put through a symlink leading outside succeeded")
	}
	if _, err := l.Put(ctx, "../outside/x", strings.NewReader("data")); err == nil {
		t.Error("Put of ../ succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the target: %v", entries)
	}
}

// TestLocalGetRefusesWhatIsNotAFile: a named pipe (or a directory) where an artifact should be
// is refused at once with its key named — a Get does not hang waiting for a writer.
func TestLocalGetRefusesWhatIsNotAFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "p/s"), 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "p/s/x.tar.zst")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, a Get blocked in the pipe's open is let go when the test ends.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	for _, key := range []string{"p/s/x.tar.zst", "p/s"} {
		done := make(chan error, 1)
		go func() {
			rc, err := l.Get(ctx, key)
			if err == nil {
				rc.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), `key "`+key+`"`) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Get(%q) = %v, want it refused as not a regular file, naming the key", key, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Get(%q) of a named pipe hangs", key)
		}
		if _, err := l.Pin(ctx, key); err == nil {
			t.Errorf("Pin(%q) accepted what is not a regular file", key)
		}
	}
}

// TestLocalListsInLexicalOrder: keys come in the lexical order S3 lists them in, a directory's
// keys where its name and "/" sort ("db-x" before "db/y").
func TestLocalListsInLexicalOrder(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"shop/db/b", "shop/db/a.manifest.json", "shop/db/a", "shop/db-x/c", "shop/db.y", "shop/dbz", "shop/db/a.chunks"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, k)), 0o755)
		os.WriteFile(filepath.Join(dir, k), nil, 0o600)
	}
	l, _ := NewLocal(dir)
	objs, err := Collect(l.List(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if !slices.IsSorted(keys) || len(keys) != 7 {
		t.Errorf("listed %q, not in lexical order", keys)
	}
}
