package workerimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The build ID read from the note is the one `go tool buildid` prints, and it names the
// executable; a file without one is named by its SHA-256.
func TestExecutableID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	id, ok := goBuildID(exe)
	if !ok || id != strings.TrimSpace(string(out)) {
		t.Fatalf("goBuildID = %q, %v; go tool buildid says %q", id, ok, out)
	}
	name, size, err := executableID(exe)
	info, _ := os.Stat(exe)
	if err != nil || len(name) != 64 || size != info.Size() {
		t.Fatalf("executableID = %q, %d, %v; want 64 hex digits and the size %d", name, size, err, info.Size())
	}

	// A copy with another build ID (the note's bytes changed in place) is named otherwise.
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), id)
	other := filepath.Join(t.TempDir(), "other")
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	if err := os.WriteFile(other, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if name2, _, err := executableID(other); err != nil || name2 == name {
		t.Fatalf("a changed build ID: %q, %v; want a name other than %q", name2, err, name)
	}

	// No Go build ID (not an ELF file): the file's SHA-256.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := goBuildID(plain); ok {
		t.Fatal("goBuildID found an ID in a text file")
	}
	name, size, err = executableID(plain)
	if err != nil || name != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || size != 3 {
		t.Fatalf("executableID(plain) = %q, %d, %v; want the SHA-256 of abc", name, size, err)
	}
}
