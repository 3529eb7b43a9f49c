package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
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
	_, err := Archive(context.Background(), []string{src}, []string{src}, &want)
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
	case !last.Written || last.Size != int64(len(stored)) || last.SHA256 != hex.EncodeToString(sum[:]):
		t.Errorf("report: written %v, size %d, sha256 %s; the file: %d bytes, sha256 %x", last.Written, last.Size, last.SHA256, len(stored), sum)
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
		if last.Written || len(sent) == 0 || !bytes.Equal(raw(sent), want.Bytes()) {
			t.Errorf("given %s: written %v, %d bytes sent; want the archive on the socket", name, last.Written, len(sent))
		}
	}
	if b, _ := os.ReadFile(full.Name()); string(b) != "an object already" {
		t.Errorf("the file that was not empty was written: %q", b)
	}
}
