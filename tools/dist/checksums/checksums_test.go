package checksums

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "b"), []byte("abc"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "a"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(dir, File), []byte("old"), 0o644)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, File))
	want := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\n" +
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  b\n"
	if string(got) != want {
		t.Errorf("checksums.txt:\n%s\nwant\n%s", got, want)
	}
	_ = os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if err := Write(dir); err == nil || !strings.Contains(err.Error(), "sub is not a regular file") {
		t.Errorf("a subdirectory: %v", err)
	}
}
