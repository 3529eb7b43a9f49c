package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/mountpath"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

// stagedInput is what a staged restore's worker reads: the request, the compressed archive
// in frames (cut short: no last frame), and the verdict (none: 0).
func stagedInput(t *testing.T, req Request, archive []byte, cut bool, verdict byte) io.Reader {
	t.Helper()
	var in bytes.Buffer
	line, _ := json.Marshal(req)
	in.Write(append(line, '\n'))
	var z bytes.Buffer
	zw, err := artifact.Zstd.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(archive)
	zw.Close()
	fw := &FrameWriter{w: &in}
	data := z.Bytes()
	if cut {
		data = data[:len(data)/2]
	}
	for len(data) > 0 { // several frames
		n := min(len(data), 1000)
		fw.Write(data[:n])
		data = data[n:]
	}
	if !cut {
		fw.End()
	}
	if verdict != 0 {
		in.WriteByte(verdict)
	}
	return &in
}

// TestStagedRestore: a staged restore changes nothing until the verdict says commit; then the
// tree is the archive's (merged with what it does not hold); called off, cut short or short
// of room, nothing in place changed and nothing staged is left. A staging directory a power
// cut left is skipped by a backup and removed by the next restore.
func TestStagedRestore(t *testing.T) {
	src, outside, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "wasdir/x"), 0o700))
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "wasfile"), []byte("file\n"), 0o600))
	must(os.WriteFile(filepath.Join(src, "dir/sub/big"), bytes.Repeat([]byte("12345678"), 400000), 0o644))
	must(os.Chown(filepath.Join(src, "dir/sub/big"), 1234, 5678))
	must(os.Chmod(filepath.Join(src, "dir/sub/big"), 0o4750))
	must(os.Symlink("hello.txt", filepath.Join(src, "link")))
	must(os.Link(filepath.Join(src, "hello.txt"), filepath.Join(src, "dir/hard.txt")))
	must(os.Chmod(filepath.Join(src, "dir"), 0o1777))
	must(os.Chown(filepath.Join(src, "dir/sub"), 42, 43))
	must(os.Chown(src, 999, 999))
	must(os.Chmod(src, 0o751))
	// A staged restore's directory a power cut left: not backed up.
	leftover := filepath.Join(src, mountpath.StagingPrefix+"0123456789ab")
	must(os.MkdirAll(filepath.Join(leftover, "half"), 0o700))
	before := listTree(t, src)

	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	if strings.Contains(archive.String(), mountpath.StagingPrefix) {
		t.Fatal("the backup holds the staging directory a power cut left")
	}

	damage := func() string {
		t.Helper()
		must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("changed"), 0o600))
		must(os.RemoveAll(filepath.Join(src, "dir/sub")))
		must(os.RemoveAll(filepath.Join(src, "wasdir")))
		must(os.WriteFile(filepath.Join(src, "wasdir"), []byte("now a file"), 0o644))
		must(os.Remove(filepath.Join(src, "wasfile")))
		must(os.MkdirAll(filepath.Join(src, "wasfile/y"), 0o755))
		must(os.Remove(filepath.Join(src, "link")))
		must(os.Symlink(outside, filepath.Join(src, "link")))
		must(os.Chmod(filepath.Join(src, "dir"), 0o755))
		must(os.Chown(src, 0, 0))
		must(os.WriteFile(filepath.Join(src, "new.txt"), []byte("made after the backup"), 0o644))
		must(os.RemoveAll(leftover))
		return listTree(t, src)
	}
	req := Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Trusted: true,
		Staged: true, Size: int64(archive.Len())}
	serve := func(in io.Reader) (code int, reports []Report) {
		t.Helper()
		var rep bytes.Buffer
		code = Serve(context.Background(), in, io.Discard, &rep)
		for _, l := range strings.Split(strings.TrimSpace(rep.String()), "\n") {
			var r Report
			must(json.Unmarshal([]byte(l), &r))
			reports = append(reports, r)
		}
		return code, reports
	}
	noStaging := func() {
		t.Helper()
		entries, err := os.ReadDir(src)
		must(err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), mountpath.StagingPrefix) {
				t.Errorf("a staging directory is left: %s", e.Name())
			}
		}
	}

	damaged := damage()
	noRoom := req
	noRoom.Size = 1 << 60
	for name, in := range map[string]io.Reader{
		"called off":     stagedInput(t, req, archive.Bytes(), false, VerdictAbort),
		"no verdict":     stagedInput(t, req, archive.Bytes(), false, 0),
		"cut short":      stagedInput(t, req, archive.Bytes(), true, 0),
		"no room":        stagedInput(t, noRoom, archive.Bytes(), false, VerdictCommit),
		"not an archive": stagedInput(t, req, []byte(strings.Repeat("junk", 1000)), false, VerdictCommit),
	} {
		must(os.MkdirAll(filepath.Join(leftover, "half"), 0o700)) // each restore removes it
		code, reps := serve(in)
		last := reps[len(reps)-1]
		if code == 0 || last.Error == "" {
			t.Errorf("%s: exit %d, last report %+v, want a failure", name, code, last)
		}
		if (name == "no room") != (last.Code == CodeNoRoom) {
			t.Errorf("%s: code %q", name, last.Code)
		}
		if after := listTree(t, src); after != damaged {
			t.Errorf("%s: the tree changed:\n%s\nwant:\n%s", name, after, damaged)
		}
		noStaging()
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("%s: written through the planted link: %v", name, entries)
		}
	}

	must(os.MkdirAll(filepath.Join(leftover, "half"), 0o700))
	code, reps := serve(stagedInput(t, req, archive.Bytes(), false, VerdictCommit))
	if code != 0 || !reps[len(reps)-1].Done {
		t.Fatalf("the staged restore failed: %+v", reps[len(reps)-1])
	}
	staged := false
	for _, r := range reps {
		staged = staged || r.Staged
	}
	if !staged {
		t.Error("no report said the restore was staged")
	}
	noStaging()
	// Merged: what the archive does not hold is kept.
	if b, err := os.ReadFile(filepath.Join(src, "new.txt")); err != nil || string(b) != "made after the backup" {
		t.Errorf("new.txt after the restore: %q, %v", b, err)
	}
	must(os.Remove(filepath.Join(src, "new.txt")))
	must(os.MkdirAll(filepath.Join(leftover, "half"), 0o700)) // swept by the restore; listed in before
	if after := listTree(t, src); after != before {
		t.Errorf("tree after the staged restore:\n%s\nwant:\n%s", after, before)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written through the planted link: %v", entries)
	}
	var a, b os.FileInfo
	a, _ = os.Stat(filepath.Join(src, "hello.txt"))
	b, _ = os.Stat(filepath.Join(src, "dir/hard.txt"))
	if !os.SameFile(a, b) {
		t.Error("the hard link is no longer one")
	}
}

// TestSyncMounts: the file systems of mounted directories and files are synced; a mounted
// socket is passed over; a mount that is not there is an error naming it.
func TestSyncMounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := syncMounts([]string{dir, file, sock}); err != nil {
		t.Fatalf("syncMounts: %v", err)
	}
	missing := filepath.Join(dir, "gone")
	if err := syncMounts([]string{dir, missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("syncMounts of a missing mount: %v, want an error naming %s", err, missing)
	}
}
