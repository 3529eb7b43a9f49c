package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

// TestRedteam2UncompressedCutAfterTarEnd: a snapshot's stream goes to the worker as it is
// (artifact.Uncompressed, no size: Request.Room only). One that fails on the sender's side
// after the tar's end marker (a blob verified last, a tree walked after) comes without its
// last frame: the worker reads past the end marker to the last frame, so it must stage
// nothing and change nothing. (Holds on the code it was written against.)
func TestRedteam2UncompressedCutAfterTarEnd(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "a"), []byte("old"), 0o644))
	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	must(os.WriteFile(filepath.Join(src, "a"), []byte("new"), 0o644))

	req := Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Uncompressed, Trusted: true,
		Staged: true, Room: int64(archive.Len())}
	var in bytes.Buffer
	line, _ := json.Marshal(req)
	in.Write(append(line, '\n'))
	fw := &FrameWriter{w: &in}
	fw.Write(archive.Bytes()) // the whole tar, end marker included; no last frame, no verdict
	var rep bytes.Buffer
	code := Serve(context.Background(), &in, io.Discard, &rep)
	if code == 0 {
		t.Errorf("a stream cut after the tar's end was taken: %s", rep.String())
	}
	if strings.Contains(rep.String(), `"staged":true`) {
		t.Errorf("a stream cut after the tar's end was reported staged: %s", rep.String())
	}
	if b, _ := os.ReadFile(filepath.Join(src, "a")); string(b) != "new" {
		t.Errorf("the file in place is %q", b)
	}
}
