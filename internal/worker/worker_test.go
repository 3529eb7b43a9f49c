package worker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/docker-backup/docker-backup/internal/containers"
	"github.com/docker-backup/docker-backup/internal/strategy"
	"github.com/docker-backup/docker-backup/internal/strategy/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "ON": ModeOn, " off ": ModeOff} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMode("yes"); err == nil || !strings.Contains(err.Error(), `"yes"`) || !strings.Contains(err.Error(), "auto") {
		t.Errorf("ParseMode(yes): %v, want an error naming the value and what is allowed", err)
	}
}

func TestMounts(t *testing.T) {
	c := &containers.Container{Mounts: []container.MountPoint{
		{Type: mount.TypeVolume, Name: "app_data", Destination: "/data", RW: true},
		{Type: mount.TypeVolume, Name: "app_cache", Destination: "/data/cache", RW: true},
		{Type: mount.TypeBind, Source: "/srv/conf", Destination: "/etc/app", RW: false},
		{Type: mount.TypeTmpfs, Destination: "/tmp"},
	}}
	got, err := Mounts(c, []string{"/data", "/etc/app/x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "app_data", Target: "/data"},
		{Type: mount.TypeVolume, Source: "app_cache", Target: "/data/cache"},
		{Type: mount.TypeBind, Source: "/srv/conf", Target: "/etc/app", ReadOnly: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Mounts =\n%v\nwant\n%v", got, want)
	}
	ro, _ := Mounts(c, []string{"/data/cache"}, false)
	if len(ro) != 1 || !ro[0].ReadOnly || ro[0].Source != "app_cache" {
		t.Errorf("a backup's mounts: %v, want app_cache read-only", ro)
	}
	for p, name := range map[string]string{"/opt/app": "/opt/app", "/tmp/x": "/tmp is on a tmpfs"} {
		if _, err := Mounts(c, []string{p}, false); !errors.Is(err, strategy.ErrNoWorker) || !strings.Contains(err.Error(), name) {
			t.Errorf("Mounts(%s): %v, want ErrNoWorker saying %q", p, err, name)
		}
	}
}

func TestReportReader(t *testing.T) {
	var seen []int64
	r := &reportReader{progress: func(n int64) { seen = append(seen, n) }}
	_, _ = r.Write([]byte(`{"raw":10}` + "\n" + `{"raw":20,"do`))
	_, _ = r.Write([]byte(`ne":true}` + "\npanic: boom\n"))
	if fmt.Sprint(seen) != "[10 20]" || r.last == nil || !r.last.Done || r.tail() != "panic: boom" {
		t.Errorf("progress %v, last %+v, tail %q", seen, r.last, r.tail())
	}
}

// TestReportReaderKeepsTheFinalReport: a report after the final one (a progress tick that
// raced with the end) does not change the outcome, done or failed.
func TestReportReaderKeepsTheFinalReport(t *testing.T) {
	for _, final := range []string{`{"raw":20,"done":true}`, `{"raw":20,"error":"disk full"}`} {
		r := &reportReader{}
		_, _ = r.Write([]byte(`{"raw":10}` + "\n" + final + "\n" + `{"raw":30}` + "\nnot json\n"))
		if r.last == nil || r.last.Raw != 20 || (!r.last.Done && r.last.Error == "") || r.tail() != "not json" {
			t.Errorf("after %s and a progress report: last %+v, tail %q", final, r.last, r.tail())
		}
	}
}

// TestNothingAfterTheFinalReport: the worker's progress ticker, still running when the final
// report goes, sends nothing after it; a failure after a done report is not sent either.
func TestNothingAfterTheFinalReport(t *testing.T) {
	for range 20 {
		var out bytes.Buffer
		var mu sync.Mutex
		rep := &reporter{w: writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })}
		stop := rep.every(time.Microsecond)
		time.Sleep(2 * time.Millisecond)
		rep.done(nil)
		time.Sleep(5 * time.Millisecond) // ticks after the end
		stop()
		rep.fail(errors.New("late"))
		mu.Lock()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		mu.Unlock()
		if last := lines[len(lines)-1]; !strings.Contains(last, `"done":true`) || strings.Count(out.String(), `"done":true`) != 1 {
			t.Fatalf("the last of %d reports is %s, want the done report, once", len(lines), last)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// listTree describes every entry below dir: type, mode, owner, size, link target, content.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", strings.TrimPrefix(p, dir), fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" size=%d sum=%x nlink=%d", fi.Size(), bytesSum(b), st.Nlink)
			if c, err := xattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, capabilityAttr, buf) }); err == nil {
				line += fmt.Sprintf(" capability=%x", c)
			}
			if !fi.IsDir() {
				line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func bytesSum(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// volumeDirs returns a volume's directory (not made yet) and one beside it, in a temporary
// directory, and a helper that fails the test on an error. The tests that use it set owners.
func volumeDirs(t *testing.T) (src, outside string, must func(error)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test sets owners: run it as root (the project's machines do)")
	}
	base := t.TempDir()
	return filepath.Join(base, "vol"), filepath.Join(base, "outside"), func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveExtractRoundTrip archives a real tree, damages it and extracts the archive back:
// the tree is as it was, the sparse file sparse again, nothing written through a link planted
// where a directory was.
func TestArchiveExtractRoundTrip(t *testing.T) {
	src, outside, must := volumeDirs(t)
	must(os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755))
	must(os.MkdirAll(outside, 0o755))
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "dir/sub/n.txt"), bytes.Repeat([]byte("1234567\n"), 50000), 0o644))
	must(os.Chmod(filepath.Join(src, "dir/sub/n.txt"), 0o4750))
	must(os.Chown(filepath.Join(src, "dir/sub/n.txt"), 1234, 5678))
	must(os.Symlink("hello.txt", filepath.Join(src, "link")))
	must(os.Lchown(filepath.Join(src, "link"), 4321, 8765))
	must(os.Link(filepath.Join(src, "hello.txt"), filepath.Join(src, "hard.txt")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	f, err := os.Create(filepath.Join(src, "sparse.img"))
	must(err)
	must(f.Truncate(64 << 20))
	_, err = f.WriteAt([]byte("middle"), 40<<20)
	must(err)
	must(f.Close())
	// Many small files (written by several writers at once), some empty, some set-user-ID,
	// one hard-linked from another directory.
	must(os.MkdirAll(filepath.Join(src, "many/sub"), 0o750))
	for i := range 300 {
		name := filepath.Join(src, "many", fmt.Sprintf("f%03d", i))
		must(os.WriteFile(name, bytes.Repeat([]byte{byte(i)}, (i%5)*37*i), 0o640))
		must(os.Chown(name, 1000+i%7, 2000+i%3))
		if i%50 == 1 {
			must(os.Chmod(name, 0o4755))
		}
	}
	must(os.Link(filepath.Join(src, "many/f007"), filepath.Join(src, "many/sub/hard")))
	must(os.Chmod(filepath.Join(src, "dir"), 0o1777))
	must(os.Chown(src, 999, 999))
	// File capabilities (cap_net_bind_service, permitted and effective: VFS_CAP_REVISION_2).
	must(os.WriteFile(filepath.Join(src, "capped"), []byte("#!/bin/true\n"), 0o755))
	capability := []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Setxattr(filepath.Join(src, "capped"), capabilityAttr, capability, 0))
	before := listTree(t, src)
	if !strings.Contains(before, "capability=01000002") {
		t.Fatalf("the capability was not set:\n%s", before)
	}

	var buf bytes.Buffer
	contents, err := Archive(context.Background(), []string{src}, []string{src}, &buf)
	must(err)
	// The digest made while archiving is the one the volume strategy makes of the stream.
	count := (&volume.Strategy{}).NewCount()
	_, err = count.Write(buf.Bytes())
	must(err)
	parsed, err := count.Contents()
	must(err)
	if contents.Files != parsed.Files || contents.Bytes != parsed.Bytes || contents.Tree != parsed.Tree || contents.Files == 0 {
		t.Errorf("Archive's contents %+v, the stream parsed: %+v", *contents, *parsed)
	}

	// Damage: contents, a removed tree, a directory replaced by a link to outside.
	must(os.WriteFile(filepath.Join(src, "hello.txt"), []byte("changed"), 0o600))
	must(os.RemoveAll(filepath.Join(src, "dir")))
	must(os.Symlink(outside, filepath.Join(src, "dir")))
	must(os.Truncate(filepath.Join(src, "sparse.img"), 10))
	must(os.Chown(src, 0, 0))
	must(unix.Removexattr(filepath.Join(src, "capped"), capabilityAttr))
	must(os.RemoveAll(filepath.Join(src, "many/sub")))
	must(os.WriteFile(filepath.Join(src, "many/f003"), []byte("changed"), 0o600))
	must(os.Symlink(outside, filepath.Join(src, "many/f004")+".tmp"))
	must(os.Remove(filepath.Join(src, "many/f004")))
	must(os.Rename(filepath.Join(src, "many/f004")+".tmp", filepath.Join(src, "many/f004")))

	must(Extract(context.Background(), &buf, []string{src}, []string{src}, true))
	if after := listTree(t, src); after != before {
		t.Errorf("tree after extract:\n%s\nwant:\n%s", after, before)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the extract wrote through the planted link: %v", entries)
	}
	var st syscall.Stat_t
	must(syscall.Stat(filepath.Join(src, "sparse.img"), &st))
	if st.Blocks*512 > 1<<20 {
		t.Errorf("the sparse file takes %d bytes after the extract, want it sparse", st.Blocks*512)
	}
}

// TestSweep: the session directories of processes that are gone are removed, the others kept.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, fmt.Sprintf("%s%d-abc", sessionPrefix, gone.Process.Pid))
	live := filepath.Join(dir, fmt.Sprintf("%s%d-def", sessionPrefix, os.Getpid()))
	other := filepath.Join(dir, "docker-backup-worker-notapid")
	for _, d := range []string{dead, live, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sweep(dir)
	for d, want := range map[string]bool{dead: false, live: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

// fakeEngine is the part of the Engine a worker's start uses; it refuses to start a
// container that joins another's network namespace (a service that stopped meanwhile).
type fakeEngine struct {
	Engine
	mu       sync.Mutex
	gone     map[string]chan struct{} // closed when the container is removed
	created  []container.NetworkMode
	hosts    []*container.HostConfig
	auto     []bool // AutoRemove of each created
	waits    int    // exits watched
	removed  int
	started  []string
	refusing bool
}

func (f *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

func (f *fakeEngine) VolumeList(context.Context, client.VolumeListOptions) (client.VolumeListResult, error) {
	return client.VolumeListResult{}, nil
}

func (f *fakeEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.created = append(f.created, o.HostConfig.NetworkMode)
	f.hosts = append(f.hosts, o.HostConfig)
	f.auto = append(f.auto, o.HostConfig.AutoRemove)
	return client.ContainerCreateResult{ID: fmt.Sprintf("worker%d", len(f.created))}, nil
}

func (f *fakeEngine) goneC(id string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone == nil {
		f.gone = map[string]chan struct{}{}
	}
	if f.gone[id] == nil {
		f.gone[id] = make(chan struct{})
	}
	return f.gone[id]
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.removed++
	select {
	case <-f.goneC(id):
	default:
		close(f.goneC(id))
	}
	return client.ContainerRemoveResult{}, nil
}

func (f *fakeEngine) ContainerAttach(context.Context, string, client.ContainerAttachOptions) (client.ContainerAttachResult, error) {
	a, b := net.Pipe()
	b.Close()
	return client.ContainerAttachResult{HijackedResponse: client.NewHijackedResponse(a, "")}, nil
}

// ContainerWait reports the container's removal (the worker never exits by itself here).
func (f *fakeEngine) ContainerWait(ctx context.Context, id string, o client.ContainerWaitOptions) client.ContainerWaitResult {
	f.waits++
	if o.Condition != container.WaitConditionRemoved {
		panic("the worker's end is watched with condition " + string(o.Condition))
	}
	res, errc := make(chan container.WaitResponse), make(chan error, 1)
	gone := f.goneC(id)
	go func() {
		select {
		case <-ctx.Done():
			errc <- ctx.Err()
		case <-gone:
			res <- container.WaitResponse{StatusCode: 137}
		}
	}()
	return client.ContainerWaitResult{Result: res, Error: errc}
}

func (f *fakeEngine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	if f.refusing && f.created[len(f.created)-1].IsContainer() {
		return client.ContainerStartResult{}, errors.New("cannot join network of a non running container")
	}
	f.started = append(f.started, id)
	return client.ContainerStartResult{}, nil
}

func TestWorkerNetwork(t *testing.T) {
	svc := &containers.Container{ID: "svc1", Name: "app-files-1", Running: true,
		Mounts: []container.MountPoint{{Type: mount.TypeVolume, Name: "app_data", Destination: "/data", RW: true}}}
	image := func(context.Context) (Image, error) { return Image{Ref: "docker-backup-worker:x"}, nil }
	for _, tc := range []struct {
		name     string
		running  bool
		write    bool
		refusing bool
		want     []container.NetworkMode
	}{
		{"backup of a running service joins its namespace", true, false, false, []container.NetworkMode{"container:svc1"}},
		{"backup of a stopped service", false, false, false, []container.NetworkMode{"none"}},
		{"restore", true, true, false, []container.NetworkMode{"none"}},
		{"the service stopped before the worker's start", true, false, true, []container.NetworkMode{"container:svc1", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{refusing: tc.refusing}
			c := *svc
			c.Running = tc.running
			r := &Runner{Engine: eng, Image: image, Owner: "test"}
			s, err := r.Open(context.Background(), &c, []string{"/data"}, strategy.WorkerAccess{Write: tc.write})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(eng.created) != fmt.Sprint(tc.want) {
				t.Errorf("workers created with networks %v, want %v", eng.created, tc.want)
			}
			if len(eng.started) != 1 || eng.started[0] != fmt.Sprintf("worker%d", len(tc.want)) {
				t.Errorf("started %v, want the last worker made", eng.started)
			}
			if eng.removed < len(tc.want) {
				t.Errorf("%d removals for %d workers made", eng.removed, len(tc.want))
			}
			// The engine removes a worker once it exits; its exit is watched from before
			// each start (after it, the exit code could be gone with the container).
			for i, auto := range eng.auto {
				if !auto {
					t.Errorf("worker %d made without AutoRemove", i+1)
				}
			}
			if eng.waits != len(tc.want) {
				t.Errorf("%d exits watched for %d starts", eng.waits, len(tc.want))
			}
			// Confined: every capability dropped but those of its work, a read-only root, no
			// new privileges; a restore's own staging volume is its only extra mount.
			for i, hc := range eng.hosts {
				want := "[CAP_DAC_OVERRIDE]"
				mounts := "[/data]"
				if tc.write {
					want, mounts = "[CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER CAP_FSETID]", "[/data "+localStaging+"]"
				}
				var targets []string
				for _, m := range hc.Mounts {
					targets = append(targets, m.Target)
				}
				if fmt.Sprint(hc.CapDrop) != "[ALL]" || fmt.Sprint(hc.CapAdd) != want || !hc.ReadonlyRootfs ||
					fmt.Sprint(hc.SecurityOpt) != "[no-new-privileges]" || fmt.Sprint(targets) != mounts {
					t.Errorf("worker %d: CapDrop %v CapAdd %v (want %s) read-only %v %v mounts %v (want %s)",
						i+1, hc.CapDrop, hc.CapAdd, want, hc.ReadonlyRootfs, hc.SecurityOpt, targets, mounts)
				}
			}
		})
	}
}

// The walk never follows a link below an archived path: an entry swapped for a link to
// elsewhere after it was examined is refused, not followed; a file swapped for another is
// told apart by its identity.
func TestArchiveFollowsNoLink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	src := filepath.Join(dir, "src")
	for _, d := range []string{outside, filepath.Join(src, "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Kept, so that no file made later reuses its inode number.
	if err := os.Link(filepath.Join(src, "f"), filepath.Join(dir, "f.keep")); err != nil {
		t.Fatal(err)
	}
	dfd, err := openDir(unix.AT_FDCWD, src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	dirInfo, err := lstatAt(dfd, "d")
	if err != nil || !dirInfo.IsDir() {
		t.Fatalf("lstatAt(d) = %v, %v", dirInfo, err)
	}
	fileInfo, err := lstatAt(dfd, "f")
	if err != nil || !fileInfo.Mode().IsRegular() {
		t.Fatalf("lstatAt(f) = %v, %v", fileInfo, err)
	}
	// The swaps a running service could make between the examination and the open.
	if err := os.Remove(filepath.Join(src, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	a := &archiver{ctx: context.Background(), tw: tar.NewWriter(&buf), links: map[fileID]string{}, buf: make([]byte, 1<<10), hash: xxhash.New()}
	if err := a.add(dfd, "f", filepath.Join(src, "f"), "src/f", fileInfo, -1); err == nil {
		t.Error("a file swapped for a link to elsewhere was archived")
	}
	if fd, err := openDir(dfd, "d", false); err == nil {
		unix.Close(fd)
		t.Error("a directory swapped for a link to elsewhere was opened")
	}
	if strings.Contains(buf.String(), "secret") {
		t.Error("the archive holds what is outside")
	}

	// A file replaced by another one (a rename over it): the identity differs.
	if err := os.Remove(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	a = &archiver{ctx: context.Background(), tw: tar.NewWriter(io.Discard), links: map[fileID]string{}, buf: make([]byte, 1<<10), hash: xxhash.New()}
	if err := a.add(dfd, "f", filepath.Join(src, "f"), "src/f", fileInfo, -1); !errors.Is(err, errChanged) {
		t.Errorf("a file replaced after its examination: %v, want errChanged", err)
	}

	// The whole walk: the link is archived as a link, what it points to is not read.
	buf.Reset()
	if _, err := Archive(context.Background(), []string{src}, []string{src}, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(hdr.Name, "/d") && hdr.Typeflag != tar.TypeSymlink {
			t.Errorf("%s: type %c, want a symbolic link", hdr.Name, hdr.Typeflag)
		}
		if strings.Contains(hdr.Name, "secret") {
			t.Errorf("the archive holds %s", hdr.Name)
		}
	}
}
