package agent

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
	"golang.org/x/sys/unix"
)

// TestBackupIntoGivenFile: a backup given a file's descriptor writes the stored stream into
// it and reports its size and SHA-256, sending nothing on the socket; given something it must
// not write (a file that is not empty, a pipe), it sends the stream on the socket instead.
func TestBackupIntoGivenFile(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(src, "dir/n.txt"), bytes.Repeat([]byte("1234567\n"), 200000), 0o644))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o600))
	var want bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &want)
	must(err)

	// run serves one backup whose socket's first message carries give's descriptor; it returns
	// what came on the socket and the final report.
	run := func(give *os.File) (sent []byte, last Report) {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "data.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		must(err)
		defer ln.Close()
		got := make(chan []byte, 1)
		go func() {
			conn, err := ln.AcceptUnix()
			if err != nil {
				got <- nil
				return
			}
			defer conn.Close()
			_, _, _ = conn.WriteMsgUnix([]byte{'F'}, unix.UnixRights(int(give.Fd())), nil)
			b, _ := io.ReadAll(conn)
			got <- b
		}()
		req, _ := json.Marshal(Request{Op: OpBackup, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Socket: sock, File: true})
		var reports bytes.Buffer
		if code := Serve(context.Background(), bytes.NewReader(append(req, '\n')), io.Discard, &reports); code != 0 {
			t.Fatalf("Serve: exit code %d, reports:\n%s", code, reports.String())
		}
		lines := strings.Split(strings.TrimSpace(reports.String()), "\n")
		must(json.Unmarshal([]byte(lines[len(lines)-1]), &last))
		if !last.Done {
			t.Fatalf("the last report is not done: %s", lines[len(lines)-1])
		}
		return <-got, last
	}
	// raw decompresses a stored stream.
	raw := func(stored []byte) []byte {
		t.Helper()
		zr, err := artifact.Zstd.NewReader(bytes.NewReader(stored))
		must(err)
		defer zr.Close()
		b, err := io.ReadAll(zr)
		must(err)
		return b
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "backup.tar.zst"))
	must(err)
	defer f.Close()
	sent, last := run(f)
	stored, err := os.ReadFile(f.Name())
	must(err)
	sum := sha256.Sum256(stored)
	switch {
	case len(sent) != 0:
		t.Errorf("%d bytes came on the socket, want none (the worker writes the file)", len(sent))
	case !last.File || last.Size != int64(len(stored)) || last.SHA256 != hex.EncodeToString(sum[:]):
		t.Errorf("report: written %v, size %d, sha256 %s; the file: %d bytes, sha256 %x", last.File, last.Size, last.SHA256, len(stored), sum)
	case !bytes.Equal(raw(stored), want.Bytes()):
		t.Error("the file does not hold the archive")
	}

	// Not writable here: the stream comes on the socket.
	full, err := os.Create(filepath.Join(t.TempDir(), "not-empty"))
	must(err)
	defer full.Close()
	_, err = full.WriteString("an object already")
	must(err)
	pr, pw, err := os.Pipe()
	must(err)
	defer pr.Close()
	defer pw.Close()
	for name, give := range map[string]*os.File{"a file that is not empty": full, "a pipe": pw} {
		sent, last := run(give)
		if last.File || len(sent) == 0 || !bytes.Equal(raw(sent), want.Bytes()) {
			t.Errorf("given %s: written %v, %d bytes sent; want the archive on the socket", name, last.File, len(sent))
		}
	}
	if b, _ := os.ReadFile(full.Name()); string(b) != "an object already" {
		t.Errorf("the file that was not empty was written: %q", b)
	}

	// The caller gone (its end of the socket closed) right after giving the file: the backup
	// stops at once, it does not write the whole volume into the file for no one.
	big := make([]byte, 32<<20)
	_, _ = crand.Read(big)
	must(os.WriteFile(filepath.Join(src, "big.bin"), big, 0o600))
	sock := filepath.Join(t.TempDir(), "data.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	must(err)
	defer ln.Close()
	gone, err := os.Create(filepath.Join(t.TempDir(), "for-no-one.tar.zst"))
	must(err)
	defer gone.Close()
	// The caller's goroutine is waited for before the file is closed: the descriptor passing
	// through the kernel orders nothing for the race detector, and a caller must not close a
	// file it is still giving away.
	caller := make(chan struct{})
	go func() {
		defer close(caller)
		conn, err := ln.AcceptUnix()
		if err == nil {
			_, _, _ = conn.WriteMsgUnix([]byte{'F'}, unix.UnixRights(int(gone.Fd())), nil)
			conn.Close()
		}
	}()
	req, _ := json.Marshal(Request{Op: OpBackup, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Socket: sock, File: true})
	var reports bytes.Buffer
	code := Serve(context.Background(), bytes.NewReader(append(req, '\n')), io.Discard, &reports)
	<-caller
	info, err := gone.Stat()
	must(err)
	if code == 0 || info.Size() >= 32<<20 {
		t.Errorf("with the caller gone: exit code %d, %d bytes written; want a failure, well before the end; reports:\n%s", code, info.Size(), reports.String())
	}
}

// TestStagedRestoreFromGivenFile: a staged restore given the artifact's descriptor reads it
// itself, reports its size and SHA-256 with Staged, and moves the files into place only on
// the verdict to commit; called off, nothing changes. Given what it cannot read (a pipe's
// writing end), it answers so and takes the stream in frames.
func TestStagedRestoreFromGivenFile(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(src, "dir/n.txt"), bytes.Repeat([]byte("1234567\n"), 200000), 0o644))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o600))
	before := listTree(t, src)
	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	var stored bytes.Buffer
	zw, err := artifact.Zstd.NewWriter(&stored)
	must(err)
	_, err = zw.Write(archive.Bytes())
	must(err)
	must(zw.Close())
	artifactPath := filepath.Join(t.TempDir(), "backup.tar.zst")
	must(os.WriteFile(artifactPath, stored.Bytes(), 0o600))
	sum := sha256.Sum256(stored.Bytes())
	damage := func() string {
		must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("changed"), 0o600))
		must(os.RemoveAll(filepath.Join(src, "dir")))
		return listTree(t, src)
	}

	// stage serves one staged restore whose socket's first message carries give's
	// descriptor; on the report that it is staged, verdict is sent (after the frames of the
	// stored stream, when the worker asked for them). It returns the worker's answer and its
	// reports.
	stage := func(give *os.File, verdict byte) (answer byte, reports []Report) {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "data.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		must(err)
		defer ln.Close()
		staged := make(chan struct{})
		answered := make(chan byte, 1)
		go func() {
			conn, err := ln.AcceptUnix()
			if err != nil {
				answered <- 0
				return
			}
			defer conn.Close()
			_, _, _ = conn.WriteMsgUnix([]byte{'F'}, unix.UnixRights(int(give.Fd())), nil)
			a := make([]byte, 1)
			_, _ = io.ReadFull(conn, a)
			answered <- a[0]
			if a[0] == FileRefused {
				fw := &FrameWriter{w: conn}
				_, _ = fw.Write(stored.Bytes())
				_ = fw.End()
			}
			<-staged
			_, _ = conn.Write([]byte{verdict})
			_ = conn.CloseWrite()
			_, _ = io.Copy(io.Discard, conn)
		}()
		pr, pw := io.Pipe()
		done := make(chan []Report, 1)
		go func() {
			var reps []Report
			lines := bufio.NewScanner(pr)
			once := sync.Once{}
			for lines.Scan() {
				var r Report
				must(json.Unmarshal(lines.Bytes(), &r))
				reps = append(reps, r)
				if r.Staged {
					once.Do(func() { close(staged) })
				}
			}
			once.Do(func() { close(staged) })
			done <- reps
		}()
		req, _ := json.Marshal(Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd,
			Trusted: true, Staged: true, Size: int64(archive.Len()), Stored: int64(stored.Len()), Socket: sock, File: true})
		Serve(context.Background(), bytes.NewReader(append(req, '\n')), io.Discard, pw)
		pw.Close()
		return <-answered, <-done
	}
	stagedReport := func(reps []Report) Report {
		for _, r := range reps {
			if r.Staged {
				return r
			}
		}
		return Report{}
	}

	f, err := os.Open(artifactPath)
	must(err)
	defer f.Close()
	damaged := damage()
	answer, reps := stage(f, VerdictAbort)
	st := stagedReport(reps)
	if answer != FileTaken || !st.File || st.Size != int64(stored.Len()) || st.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("given the artifact: answer %q, staged report %+v; want %q and size %d, sha256 %x", answer, st, FileTaken, stored.Len(), sum)
	}
	if after := listTree(t, src); after != damaged {
		t.Errorf("called off, the tree changed:\n%s\nwant:\n%s", after, damaged)
	}
	answer, reps = stage(f, VerdictCommit)
	if last := reps[len(reps)-1]; answer != FileTaken || !last.Done {
		t.Fatalf("given the artifact, committed: answer %q, last report %+v", answer, last)
	}
	if after := listTree(t, src); after != before {
		t.Errorf("tree after the restore from the given file:\n%s\nwant:\n%s", after, before)
	}

	damage()
	rp, wp, err := os.Pipe()
	must(err)
	defer rp.Close()
	defer wp.Close()
	answer, reps = stage(wp, VerdictCommit)
	if last := reps[len(reps)-1]; answer != FileRefused || stagedReport(reps).File || !last.Done {
		t.Fatalf("given a pipe's writing end: answer %q, reports %+v; want %q and the stream in frames", answer, reps, FileRefused)
	}
	if after := listTree(t, src); after != before {
		t.Errorf("tree after the restore from frames:\n%s\nwant:\n%s", after, before)
	}
}
