//go:build linux

package agent

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// TestServeRefusesBadPatterns: a request with a bad pattern fails before anything is read,
// naming the pattern.
func TestServeRefusesBadPatterns(t *testing.T) {
	if _, err := exclude.Compile([]string{"ok", "a//b"}); err == nil || !strings.Contains(err.Error(), `"a//b"`) {
		t.Fatalf("Compile: %v", err)
	}
	rep := &reporter{w: io.Discard}
	err := backup(context.Background(), Request{Op: OpBackup, Paths: []string{t.TempDir()}, Exclude: []string{"[x"}}, io.Discard, rep)
	if err == nil || !strings.Contains(err.Error(), `"[x"`) {
		t.Errorf("backup with a bad pattern: %v", err)
	}
	err = count(context.Background(), Request{Op: OpCount, Paths: []string{t.TempDir()}, Exclude: []string{"[x"}}, rep)
	if err == nil || !strings.Contains(err.Error(), `"[x"`) {
		t.Errorf("count with a bad pattern: %v", err)
	}
}
