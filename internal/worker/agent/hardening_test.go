package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/strategy/volume/tarpolicy"
	"github.com/docker-backup/docker-backup/internal/worker/extract"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"golang.org/x/sys/unix"
)

// TestHardLinkBetweenPaths: a file hard-linked from two backed-up paths of one volume is
// archived whole in each path (one map of links per path), so the archive passes the restore's
// tar policy — which keeps each path's links inside it — and restores both files.
func TestHardLinkBetweenPaths(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "a"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "b"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a/x"), []byte("shared\n"), 0o644))
	must(os.Link(filepath.Join(src, "a/x"), filepath.Join(src, "b/y")))
	must(os.Link(filepath.Join(src, "b/y"), filepath.Join(src, "b/z"))) // a link inside b stays one
	paths := []string{filepath.Join(src, "a"), filepath.Join(src, "b")}
	var buf bytes.Buffer
	_, err := tree.Archive(context.Background(), paths, []string{src}, nil, &buf)
	must(err)

	must(os.RemoveAll(filepath.Join(src, "a")))
	must(os.RemoveAll(filepath.Join(src, "b")))
	if err := extract.Tar(context.Background(), bytes.NewReader(buf.Bytes()), paths, []string{src}, false); err != nil {
		t.Fatalf("the archive of two paths sharing a file does not restore: %v", err)
	}
	for _, name := range []string{"a/x", "b/y", "b/z"} {
		if b, err := os.ReadFile(filepath.Join(src, name)); err != nil || string(b) != "shared\n" {
			t.Errorf("%s after the restore: %q, %v", name, b, err)
		}
	}
	tree := listTree(t, src)
	if !strings.Contains(tree, "/b/y -rw-r--r-- 0:0 size=7") || !strings.Contains(tree, "nlink=2") {
		t.Errorf("b/y and b/z are not one file again:\n%s", tree)
	}
}

// capSetuid is a security.capability value: cap_setuid (bit 7), permitted and effective
// (VFS_CAP_REVISION_2) — set-user-ID root by another name.
var capSetuid = []byte{1, 0, 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// TestUntrustedRestoreDropsCapabilities: a file's capabilities come back from a trusted backup
// only; from one that is not (unsigned, another key), the file is restored without them, in
// place and staged, and the worker says so in a warning.
func TestUntrustedRestoreDropsCapabilities(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "ping"), []byte("#!/bin/true\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("x"), 2<<20), 0o755)) // not a small file
	for _, name := range []string{"ping", "big"} {
		must(unix.Setxattr(filepath.Join(src, name), tarpolicy.CapabilityXattr, capSetuid, 0))
	}
	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	capOf := func(name string) string {
		c, err := xattr(func(buf []byte) (int, error) {
			return unix.Lgetxattr(filepath.Join(src, name), tarpolicy.CapabilityXattr, buf)
		})
		if err != nil {
			return ""
		}
		return string(c)
	}
	reset := func() {
		t.Helper()
		for _, name := range []string{"ping", "big"} {
			must(os.Remove(filepath.Join(src, name)))
		}
	}
	check := func(how string, trusted bool) {
		t.Helper()
		for _, name := range []string{"ping", "big"} {
			got, want := capOf(name), ""
			if trusted {
				want = string(capSetuid)
			}
			if got != want {
				t.Errorf("%s, trusted %v: %s has the capability %x, want %x", how, trusted, name, got, want)
			}
			if fi, err := os.Stat(filepath.Join(src, name)); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s, trusted %v: %s not restored: %v", how, trusted, name, err)
			}
		}
	}
	for _, trusted := range []bool{false, true} {
		reset()
		must(extract.Tar(context.Background(), bytes.NewReader(archive.Bytes()), []string{src}, []string{src}, trusted))
		check("in place", trusted)

		reset()
		req := Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Trusted: trusted,
			Staged: true, Size: int64(archive.Len())}
		var reports bytes.Buffer
		if code := Serve(context.Background(), stagedInput(t, req, archive.Bytes(), false, VerdictCommit), io.Discard, &reports); code != 0 {
			t.Fatalf("staged restore: exit code %d:\n%s", code, reports.String())
		}
		check("staged", trusted)
		warned := false
		for _, l := range strings.Split(strings.TrimSpace(reports.String()), "\n") {
			var r Report
			must(json.Unmarshal([]byte(l), &r))
			warned = warned || strings.Contains(r.Warn, "security.capability of")
		}
		if warned == trusted {
			t.Errorf("staged, trusted %v: warned about the dropped capabilities: %v; reports:\n%s", trusted, warned, reports.String())
		}
	}
}

// TestExtractNodesInTheDirectoryDescriptor: the directory a restore is writing into is
// swapped for a link to elsewhere between two entries (a running service can do that during
// a staged restore): the named pipe and the link's times that follow are made in the
// directory the restore holds open, nothing is created through the link.
func TestExtractNodesInTheDirectoryDescriptor(t *testing.T) {
	src, outside, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "d/a"), bytes.Repeat([]byte("a"), 512), 0o644))
	must(unix.Mkfifo(filepath.Join(src, "d/p"), 0o600))
	must(os.Symlink("a", filepath.Join(src, "d/s")))
	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	// Where the first file's content ends: after it, the restore has entered d.
	cut := bytes.Index(archive.Bytes(), bytes.Repeat([]byte("a"), 512)) + 512
	if cut < 512 {
		t.Fatal("the file's content is not in the archive")
	}
	must(os.RemoveAll(filepath.Join(src, "d")))

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := extract.Tar(context.Background(), pr, []string{src}, []string{src}, true)
		pr.CloseWithError(fmt.Errorf("the restore ended: %v", err))
		done <- err
	}()
	if _, err := pw.Write(archive.Bytes()[:cut]); err != nil {
		t.Fatal(err)
	}
	// The restore read the file: d is its current directory. Swapped for a link to outside.
	must(os.Rename(filepath.Join(src, "d"), filepath.Join(src, "d.held")))
	must(os.Symlink(outside, filepath.Join(src, "d")))
	if _, err := pw.Write(archive.Bytes()[cut:]); err != nil {
		t.Fatalf("the restore stopped reading: %v (its error: %v)", err, <-done)
	}
	pw.Close()
	// The restore may refuse the swapped directory at the end (its times are set through the
	// volume's root, which follows no link out); it must not fail before.
	if err := <-done; err != nil && !strings.Contains(err.Error(), "setting the times of "+filepath.Join(src, "d")+":") {
		t.Errorf("the restore failed: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the restore created %v through the link", entries)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(src, "d.held/p"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("the named pipe is not in the directory the restore held: %v", err)
	}
}
