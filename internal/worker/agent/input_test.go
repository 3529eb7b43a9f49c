package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/worker/tree"
)

// TestExitOnlyOnceTheReportIsRead: after its final report the worker waits for its input to
// end — its caller's word that the report came — before it returns (so the engine cannot drop
// the report's end with the exiting container); its input ending returns it at once.
func TestExitOnlyOnceTheReportIsRead(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(src, 0o755))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o644))
	for _, req := range []Request{
		{Op: OpCount, Paths: []string{src}, Mounts: []string{src}},
		{Op: "no-such-op"}, // a failure: its report is final too
	} {
		inR, inW := io.Pipe()
		repR, repW := io.Pipe()
		code := make(chan int, 1)
		go func() {
			code <- Serve(context.Background(), inR, io.Discard, repW)
			repW.Close()
		}()
		line, _ := json.Marshal(req)
		if _, err := inW.Write(append(line, '\n')); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(repR)
		var last Report
		for sc.Scan() {
			must(json.Unmarshal(sc.Bytes(), &last))
			if last.Done || last.Error != "" {
				break
			}
		}
		if !last.Done && last.Error == "" {
			t.Fatalf("%s: no final report", req.Op)
		}
		go func() { _, _ = io.Copy(io.Discard, repR) }()
		select {
		case c := <-code:
			t.Fatalf("%s: the worker returned (%d) before its input ended", req.Op, c)
		case <-time.After(300 * time.Millisecond):
		}
		inW.Close()
		select {
		case c := <-code:
			if (c == 0) != last.Done {
				t.Errorf("%s: exit code %d with the final report %+v", req.Op, c, last)
			}
		case <-time.After(ackWait / 2):
			t.Fatalf("%s: the worker did not return once its input ended", req.Op)
		}
	}
}

// TestRestoreOverInput: a restore whose stream comes on the worker's input (no data socket)
// takes it in frames: the whole stream restores the tree; one cut short (no last frame)
// fails, even though the archive in it may look complete.
func TestRestoreOverInput(t *testing.T) {
	src, _, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(src, "dir/n.txt"), bytes.Repeat([]byte("1234567\n"), 100000), 0o644))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o600))
	before := listTree(t, src)
	var archive bytes.Buffer
	_, err := tree.Archive(context.Background(), []string{src}, []string{src}, nil, &archive)
	must(err)
	req := Request{Op: OpRestore, Paths: []string{src}, Mounts: []string{src}, Compression: artifact.Zstd, Trusted: true}

	for _, cut := range []bool{true, false} {
		must(os.RemoveAll(filepath.Join(src, "dir")))
		must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("changed"), 0o600))
		var reports bytes.Buffer
		code := Serve(context.Background(), stagedInput(t, req, archive.Bytes(), cut, 0), io.Discard, &reports)
		lines := strings.Split(strings.TrimSpace(reports.String()), "\n")
		var last Report
		must(json.Unmarshal([]byte(lines[len(lines)-1]), &last))
		switch {
		case cut && (code == 0 || !strings.Contains(last.Error, "cut short")):
			t.Errorf("a stream cut short: exit %d, last report %+v; want it refused", code, last)
		case !cut && (code != 0 || !last.Done):
			t.Errorf("the whole stream: exit %d, last report %+v", code, last)
		case !cut:
			if after := listTree(t, src); after != before {
				t.Errorf("tree after the restore:\n%s\nwant:\n%s", after, before)
			}
		}
	}
}
