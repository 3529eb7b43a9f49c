//go:build linux

package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"golang.org/x/sys/unix"
)

// TestMeasure: what a backup holds and what the exclusions leave out, entry by entry and byte
// by byte — an excluded file, an excluded directory and all below it, a trailing-slash pattern
// (directories only), an anchored one, a pattern that includes again, hard links counted once
// (kept twice, kept and left out, left out twice), a symbolic link, a foreign mount not
// crossed either way — and the kept side is exactly what the archive holds.
func TestMeasure(t *testing.T) {
	src, _, must := volumeDirs(t)
	file := func(name string, size int) {
		t.Helper()
		p := filepath.Join(src, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644))
	}
	link := func(old, name string) { t.Helper(); must(os.Link(filepath.Join(src, old), filepath.Join(src, name))) }
	// Kept: the root, keep.txt, logs/, logs/keep.log, d/, d/cache, d/tmp/, d/tmp/f, big,
	// big2, keep2.txt, sl — 12 entries, 10+3+20+4+1000+30 bytes.
	file("keep.txt", 10)
	file("app.log", 5)       // *.log
	file("logs/a.log", 7)    // *.log
	file("logs/keep.log", 3) // !keep.log
	file("cache/x", 100)     // cache/: the directory and all below it
	file("cache/sub/y", 50)
	file("d/cache", 20) // a file: cache/ matches directories only
	file("d/tmp/f", 4)  // /tmp is anchored
	file("tmp/f", 6)
	file("big", 1000)
	link("big", "big2") // kept twice: its bytes once
	file("keep2.txt", 30)
	link("keep2.txt", "cache/hl") // kept and left out: its bytes are kept
	file("cache/a2", 40)
	link("cache/a2", "tmp/a2link") // left out twice: its bytes left out once
	must(os.Symlink("keep.txt", filepath.Join(src, "sl")))
	// Mounts that are not the service's: neither side counts them, nor their mount points.
	for _, m := range []string{"mnt", "cache/mnt"} {
		dir := filepath.Join(src, m)
		must(os.MkdirAll(dir, 0o755))
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
			t.Fatalf("mounting a tmpfs on %s (the test needs root with CAP_SYS_ADMIN): %v", dir, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		must(os.WriteFile(filepath.Join(dir, "big"), make([]byte, 5000), 0o644))
	}
	patterns := []string{"*.log", "!keep.log", "cache/", "/tmp"}
	excl, err := exclude.Compile(patterns)
	must(err)

	got, err := tree.Measure(context.Background(), []string{src}, []string{src}, excl)
	must(err)
	want := Measurement{Files: 12, Bytes: 1067, ExcludedFiles: 11, ExcludedBytes: 5 + 7 + 100 + 50 + 40 + 6}
	if *got != want {
		t.Errorf("measured %+v, want %+v", *got, want)
	}
	contents, err := tree.Archive(context.Background(), []string{src}, []string{src}, excl, io.Discard)
	must(err)
	if contents.Files != got.Files || contents.Bytes != got.Bytes {
		t.Errorf("the archive holds %d entries, %d bytes; measured %d, %d", contents.Files, contents.Bytes, got.Files, got.Bytes)
	}
	// Without exclusions, everything is kept (the hard links' bytes once).
	all, err := tree.Measure(context.Background(), []string{src}, []string{src}, nil)
	must(err)
	if want := (Measurement{Files: 23, Bytes: 1067 + 208}); *all != want {
		t.Errorf("without exclusions: %+v, want %+v", *all, want)
	}
}

// TestMeasureOperation: the worker's measure operation reports the measurement and how many
// patterns it applied (what the host checks, as for a backup); a named pipe is counted from
// its lstat (opening it would block) and a socket passed over, as the archive does.
func TestMeasureOperation(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "secret"), make([]byte, 123), 0o000))
	must(unix.Mkfifo(filepath.Join(src, "pipe"), 0o644))
	ln, err := net.Listen("unix", filepath.Join(src, "sock"))
	must(err)
	defer ln.Close()
	rep := serveOne(t, Request{Op: OpMeasure, Paths: []string{src}, Mounts: []string{src}, Exclude: []string{"secret", "nothing-here"}})
	if !rep.Done || rep.Measured == nil || rep.Excluded != 2 {
		t.Fatalf("report %+v", rep)
	}
	if want := (Measurement{Files: 2, ExcludedFiles: 1, ExcludedBytes: 123}); *rep.Measured != want {
		t.Errorf("measured %+v, want %+v", *rep.Measured, want)
	}
}

// serveOne runs Serve on req and returns its final report.
func serveOne(t *testing.T, req Request) Report {
	t.Helper()
	line, _ := json.Marshal(req)
	repR, repW := io.Pipe()
	go func() {
		Serve(context.Background(), strings.NewReader(string(line)+"\n"), io.Discard, repW)
		repW.Close()
	}()
	var last Report
	sc := bufio.NewScanner(repR)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatal(err)
		}
	}
	return last
}
