package writeback

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriter: what goes through the Writer is the file's content, in order, however it is cut,
// and Written counts it.
func TestWriter(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f)
	var want bytes.Buffer
	for i := range 40 {
		p := bytes.Repeat([]byte{byte(i)}, (i%7+1)*300_000) // past several write-back chunks
		if n, err := w.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write: %d, %v", n, err)
		}
		want.Write(p)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) || w.Written() != int64(want.Len()) {
		t.Errorf("the file holds %d bytes (equal: %v), Written says %d; want %d", len(got), bytes.Equal(got, want.Bytes()), w.Written(), want.Len())
	}
}
