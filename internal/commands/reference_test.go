package commands

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReferenceIsCurrent fails when docs/cli does not match the commands: run `make docs`.
func TestReferenceIsCurrent(t *testing.T) {
	t.Setenv(envTarget, "")
	t.Setenv("COMPOSE_PROJECT_NAME", "")
	dir := t.TempDir()
	if err := WriteReference(dir); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	want, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	have, _ := filepath.Glob(filepath.Join(committed, "*.md"))
	if len(want) != len(have) {
		t.Errorf("docs/cli has %d files, the commands make %d: run make docs", len(have), len(want))
	}
	for _, f := range want {
		gen, _ := os.ReadFile(f)
		cur, err := os.ReadFile(filepath.Join(committed, filepath.Base(f)))
		if err != nil || string(cur) != string(gen) {
			t.Errorf("docs/cli/%s is stale: run make docs", filepath.Base(f))
		}
	}
}
