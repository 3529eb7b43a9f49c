package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/incremental/meta"
)

// TestServeIncremental: the request line, then the parent's metadata on the same input (no
// socket); the stream that comes out is the compressed incremental tar, the final report says
// what was read.
func TestServeIncremental(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"same.txt": "unchanged", "new.txt": "fresh"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Lstat(filepath.Join(dir, "same.txt"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	name := strings.TrimPrefix(dir, "/") + "/same.txt"
	var in bytes.Buffer
	req, _ := json.Marshal(Request{Op: OpBackup, Paths: []string{dir}, Compression: artifact.Zstd, Incremental: true, Parent: true})
	in.Write(append(req, '\n'))
	e := meta.NewEncoder(&in)
	if err := e.Add(meta.Record{Path: name, Size: fi.Size(), MTime: fi.ModTime(), CTime: timespec(st.Ctim), Inode: st.Ino}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	var out, reports bytes.Buffer
	if code := Serve(context.Background(), &in, &out, &reports); code != 0 {
		t.Fatalf("exit %d: %s", code, reports.String())
	}
	lines := strings.Split(strings.TrimSpace(reports.String()), "\n")
	var last Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.Incremental == nil || last.Incremental.Read != 1 || last.Incremental.Unchanged != 1 || last.Incremental.UnchangedBytes != 9 {
		t.Fatalf("final report %s: want done, 1 file read, 1 unchanged (9 bytes)", lines[len(lines)-1])
	}
	zr, err := artifact.Zstd.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		seen[filepath.Base(h.Name)] = string(b) + "|" + h.PAXRecords[meta.PAXUnchanged]
	}
	if seen["same.txt"] != "|9" || seen["new.txt"] != "fresh|" {
		t.Fatalf("entries %q: want same.txt header-only marked unchanged (9), new.txt read", seen)
	}
}

// TestServeIncrementalRefusesRecipients: the repository encrypts, not the worker.
func TestServeIncrementalRefusesRecipients(t *testing.T) {
	req, _ := json.Marshal(Request{Op: OpBackup, Paths: []string{t.TempDir()}, Incremental: true, Recipients: []string{"age1x"}})
	var out, reports bytes.Buffer
	if code := Serve(context.Background(), bytes.NewReader(append(req, '\n')), &out, &reports); code == 0 || !strings.Contains(reports.String(), "no recipients") {
		t.Fatalf("exit %d, reports %s: want the request refused", code, reports.String())
	}
}

func timespec(ts syscall.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
