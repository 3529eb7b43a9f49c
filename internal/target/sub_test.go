package target

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSubKeepsToItsPrefix(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.Put(ctx, "host-b/shop/db/x", strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	a, err := Sub(base, "/host-a/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "shop/db/x", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	objs, err := Collect(a.List(ctx, ""))
	if err != nil || len(objs) != 1 || objs[0].Key != "shop/db/x" {
		t.Fatalf("List = %+v, %v", objs, err)
	}
	rc, err := a.Get(ctx, "shop/db/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "a" {
		t.Errorf("Get = %q", b)
	}
	if err := a.Delete(ctx, "shop/db/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "host-b/shop/db/x")); err != nil {
		t.Errorf("the other prefix's object: %v", err)
	}
	if _, err := a.Get(ctx, "../host-b/shop/db/x"); err == nil {
		t.Error("a key escaped the prefix")
	}
	if _, err := Sub(base, "a/../b"); err == nil {
		t.Error("a prefix with .. was accepted")
	}
	if same, _ := Sub(base, ""); same != Target(base) {
		t.Error("an empty prefix must return the target itself")
	}
	if a.String() != dir+"/host-a" {
		t.Errorf("String = %q", a.String())
	}
}

func TestLocalRemoveIncomplete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	os.MkdirAll(filepath.Join(dir, "shop/db"), 0o700)
	for _, name := range []string{".db-1.tar.zst.tmp-abc", ".db-1.tar.zst.tmp-def", ".db-2.tar.zst.tmp-abc", "db-1.tar.zst.manifest.json"} {
		os.WriteFile(filepath.Join(dir, "shop/db", name), []byte("x"), 0o600)
	}
	if err := l.RemoveIncomplete(ctx, "shop/db/db-1.tar.zst"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "shop/db"))
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".db-2.tar.zst.tmp-abc db-1.tar.zst.manifest.json" {
		t.Errorf("left %q", left)
	}
	if err := l.RemoveIncomplete(ctx, "nowhere/x"); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}
