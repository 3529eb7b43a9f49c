package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// fillScript creates files that exercise everything a volume backup must keep: contents,
// modes (setuid, sticky), owners, symbolic and hard links, empty directories, unicode names
// and a large sparse file.
const fillScript = `set -e
mkdir -p /data/dir/sub /data/empty /config/conf.d
printf 'hello\n' > /data/hello.txt
head -c 3000000 /dev/urandom > /data/dir/random.bin
seq 1 200000 > /data/dir/sub/numbers.txt
printf 'unicode\n' > '/data/dir/ünïcødé name ✓.txt'
truncate -s 200M /data/sparse.img
printf 'middle' | dd of=/data/sparse.img bs=1 seek=150000000 conv=notrunc 2>/dev/null
ln -s hello.txt /data/link-to-hello
ln -s /nonexistent/target /data/dangling
ln /data/hello.txt /data/hardlink.txt
chown 1234:5678 /data/dir/random.bin
chown -h 4321:8765 /data/link-to-hello
chmod 0640 /data/hello.txt
chmod 4750 /data/dir/sub/numbers.txt
chmod 1777 /data/empty
chmod 0700 /data/dir
printf 'key=value\n' > /config/conf.d/app.conf
chmod 0600 /config/conf.d/app.conf
chown 33:33 /config/conf.d
chown 999:999 /data
`

// changeScript damages the tree in every way the restore must undo.
const changeScript = `set -e
echo changed > /data/hello.txt
rm -rf /data/dir/sub
rm /data/link-to-hello && ln -s dir /data/link-to-hello
rmdir /data/empty
chown 0:0 /data/dir/random.bin /data
chmod 0755 /data/dir
truncate -s 10 /data/sparse.img
rm /config/conf.d/app.conf
`

// treeHash lists every entry under /data and /config with type, mode, owner, size, link
// target and link count, and the SHA-256 of every file's content.
const treeHashScript = `cd / && find data config -printf '%p|%y|%m|%U|%G|%s|%l|%n\n' | LC_ALL=C sort &&
find data config -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`

type volumeFixture struct {
	p      *project
	filler string // plain container that writes and hashes the volumes
	app    string // the container backed up: no shell, no tar
}

func newVolumeFixture(t *testing.T) *volumeFixture {
	t.Helper()
	return newVolumeFixtureIn(t, newProject(t))
}

// newVolumeFixtureIn adds the filler and the shell-less "files" service to project p.
func newVolumeFixtureIn(t *testing.T, p *project) *volumeFixture {
	t.Helper()
	data, config := p.volume("data"), p.volume("config")
	f := &volumeFixture{p: p}
	mounts := []string{"-v", data + ":/data", "-v", config + ":/config"}
	f.filler = p.service("filler", plainImage, mounts...)
	f.app = p.service("files", pauseImage, mounts...)
	f.sh(fillScript)
	return f
}

func (f *volumeFixture) sh(script string) string {
	f.p.t.Helper()
	return docker(f.p.t, "exec", f.filler, "sh", "-c", script)
}

func (f *volumeFixture) tree() string {
	f.p.t.Helper()
	return f.sh(treeHashScript)
}

// dataPaths are the ways a volume backup reads and writes files: the plugin reading the
// volumes on this host itself (the default here: the tests run as root beside the engine; its
// restores go through a worker container), a worker container beside the data, and the
// Engine's archive API (DOCKER_BACKUP_WORKER=auto|on|off).
var dataPaths = []struct{ name, mode string }{{"host", "auto"}, {"worker", "on"}, {"archive", "off"}}

func dataPathEnv(mode string) []string { return []string{"DOCKER_BACKUP_WORKER=" + mode} }

func TestVolumeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, dp := range dataPaths {
		t.Run(dp.name, func(t *testing.T) {
			t.Parallel()
			env := dataPathEnv(dp.mode)
			f := newVolumeFixture(t)
			before := f.tree()
			for _, want := range []string{"data/link-to-hello|l|777|4321|8765|9|hello.txt", "data/empty|d|1777", "data/dir/sub/numbers.txt|f|4750", "data|d|755|999|999", "ünïcødé name ✓.txt"} {
				if !strings.Contains(before, want) {
					t.Fatalf("the fixture lacks %q; tree:\n%s", want, before)
				}
			}

			dir := t.TempDir()
			// The app container has no shell and no tar.
			out, stderr, err := dockerCmd(env, "backup", "run", "files", "--project", f.p.name, "--to", dir)
			if err != nil {
				t.Fatalf("docker backup run: %v\n%s\n%s", err, out, stderr)
			}
			mustContain(t, out, "volume")
			// The worker writes the new file of the directory target itself (given its descriptor).
			if wrote := strings.Contains(stderr, "The worker wrote the backup file into the target directory itself"); wrote != (dp.name == "worker") {
				t.Errorf("the worker wrote the backup file itself: %v, want %v; stderr:\n%s", wrote, dp.name == "worker", stderr)
			}
			m := onlyBackup(t, dir)
			if m.Strategy != "volume" || m.Source["paths"] != "/config,/data" || m.Source["data_path"] != dp.name {
				t.Errorf("manifest: strategy %q paths %q data path %q, want volume /config,/data %s", m.Strategy, m.Source["paths"], m.Source["data_path"], dp.name)
			}

			f.sh(changeScript)
			if f.tree() == before {
				t.Fatal("the changes did not change the tree")
			}
			// Restore by path, into the running container: it is stopped and started again.
			out, stderr, err = dockerCmd(env, "backup", "restore", dir+"/"+m.Artifact, "--to", "files", "--project", f.p.name, "--yes")
			if err != nil {
				t.Fatalf("docker backup restore: %v\n%s\n%s", err, out, stderr)
			}
			mustContain(t, out, "Restored")
			// The worker reads the artifact in the directory target itself (given its descriptor);
			// a restore in auto mode goes through a worker too.
			if read := strings.Contains(stderr, "The worker read the backup file in the target directory itself"); read != (dp.name != "archive") {
				t.Errorf("the worker read the backup file itself: %v, want %v; stderr:\n%s", read, dp.name != "archive", stderr)
			}
			if after := f.tree(); after != before {
				t.Errorf("tree after restore differs from the original:\n%s", diffLines(before, after))
			}
			if !running(t, f.app) {
				t.Error("the app container was not started again after the restore")
			}
			if dp.name != "archive" {
				// The worker leaves runs of zeros as holes: the 200 MB sparse file stays sparse.
				if blocks := strings.TrimSpace(f.sh("stat -c %b /data/sparse.img")); len(blocks) > 4 {
					t.Errorf("the sparse file takes %s blocks after the restore, want a few", blocks)
				}
				noWorkersLeft(t, f.p.name, "files")
			}
		})
	}
}

// TestVolumeDataPathsAgree backs up the same tree both ways: the same entries, bytes and tree
// digest; and each backup restores through the other path.
func TestVolumeDataPathsAgree(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	before := f.tree()
	dirs := map[string]string{}
	for _, dp := range dataPaths {
		dirs[dp.name] = t.TempDir()
		backupWithEnv(t, dataPathEnv(dp.mode), "run", "files", "--project", f.p.name, "--to", dirs[dp.name])
	}
	h, w, a := onlyBackup(t, dirs["host"]), onlyBackup(t, dirs["worker"]), onlyBackup(t, dirs["archive"])
	for _, m := range []artifact.Manifest{h, w} {
		if m.Contents == nil || a.Contents == nil || m.Contents.Files != a.Contents.Files || m.Contents.Bytes != a.Contents.Bytes || m.Contents.Tree != a.Contents.Tree || m.Contents.Tree == "" {
			t.Fatalf("the paths digest the same tree differently: %s %+v, archive %+v", m.Source["data_path"], m.Contents, a.Contents)
		}
	}
	if h.Source["data_path"] != "host" || w.Source["data_path"] != "worker" || a.Source["data_path"] != "archive" {
		t.Fatalf("data paths recorded: %q, %q and %q", h.Source["data_path"], w.Source["data_path"], a.Source["data_path"])
	}
	// The host's and the worker's stored bytes are the same (one code, two places).
	if h.SHA256 != w.SHA256 {
		t.Errorf("the host's backup (sha256 %s) differs from the worker's (%s)", h.SHA256, w.SHA256)
	}
	for _, cross := range []struct {
		from string
		m    artifact.Manifest
		mode string
	}{{dirs["host"], h, "off"}, {dirs["worker"], w, "off"}, {dirs["archive"], a, "on"}} {
		f.sh(changeScript)
		backupWithEnv(t, dataPathEnv(cross.mode), "restore", cross.m.Artifact, "--from", cross.from, "--to", "files", "--project", f.p.name, "--yes")
		if after := f.tree(); after != before {
			t.Errorf("the %s backup restored with DOCKER_BACKUP_WORKER=%s differs:\n%s", cross.m.Source["data_path"], cross.mode, diffLines(before, after))
		}
	}
	// Verify (a scratch restore through the archive API) passes for the worker's backup.
	out := backup(t, "verify", w.Artifact, "--from", dirs["worker"])
	mustContain(t, out, "PASS")
}

func TestVolumeBackupOfStoppedContainerWithGzip(t *testing.T) {
	t.Parallel()
	for _, dp := range dataPaths {
		t.Run(dp.name, func(t *testing.T) {
			t.Parallel()
			testVolumeStoppedGzip(t, dataPathEnv(dp.mode))
		})
	}
}

func testVolumeStoppedGzip(t *testing.T, env []string) {
	f := newVolumeFixture(t)
	before := f.tree()
	docker(t, "stop", f.app)
	dir := t.TempDir()
	backupWithEnv(t, env, "run", "files", "--project", f.p.name, "--to", dir, "--compression", "gzip", "--paths", "/data")
	m := onlyBackup(t, dir)
	if m.Compression != "gzip" || !strings.HasSuffix(m.Artifact, ".tar.gz") || m.Source["paths"] != "/data" {
		t.Errorf("manifest: %+v", m)
	}
	f.sh(changeScript)
	backupWithEnv(t, env, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	after := f.tree()
	// Only /data was backed up: it is back, /config keeps its change.
	dataOnly := func(tree string) string {
		var keep []string
		for _, l := range strings.Split(tree, "\n") {
			if strings.HasPrefix(l, "data") || strings.Contains(l, "  data/") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if dataOnly(after) != dataOnly(before) {
		t.Errorf("/data after restore differs:\n%s", diffLines(dataOnly(before), dataOnly(after)))
	}
	if strings.Contains(after, "config/conf.d/app.conf") {
		t.Error("/config was not in the backup but was restored")
	}
	if running(t, f.app) {
		t.Error("a stopped container was started by the restore")
	}
}

// diffLines shows the lines only in a and only in b.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestVolumeRestoreIntoReadOnlyContainer(t *testing.T) {
	t.Parallel()
	for _, dp := range dataPaths {
		t.Run(dp.name, func(t *testing.T) {
			t.Parallel()
			testVolumeReadOnly(t, dataPathEnv(dp.mode))
		})
	}
}

func testVolumeReadOnly(t *testing.T, env []string) {
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	app := p.service("app", pauseImage, "--read-only", "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "mkdir -p /data/a && seq 1 1000 > /data/a/n.txt && ln -s a/n.txt /data/l")
	hash := func() string {
		return docker(t, "exec", filler, "sh", "-c", "cd /data && find . -printf '%p|%y|%m|%l\\n' | LC_ALL=C sort && sha256sum a/n.txt")
	}
	before := hash()
	dir := t.TempDir()
	backupWithEnv(t, env, "run", "app", "--project", p.name, "--to", dir)
	docker(t, "exec", filler, "sh", "-c", "rm -rf /data/a /data/l")
	backupWithEnv(t, env, "restore", "latest", "--from", dir, "--to", "app", "--project", p.name, "--yes")
	if after := hash(); after != before {
		t.Errorf("read-only container's volume after restore:\n%s", diffLines(before, after))
	}
	if !running(t, app) {
		t.Error("the container was not started again")
	}
}

// TestVolumeBackupFollowsNoLink: a service's volume holds a link to the host's /etc. Read in
// place on the host (the default here), the link is archived as a link and never followed —
// not as an entry, not on the way to a path the backup was asked for — so nothing of the
// host's file system reaches the backup.
func TestVolumeBackupFollowsNoLink(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.volume("data")
	filler := p.service("filler", plainImage, "-v", vol+":/data")
	p.service("files", pauseImage, "-v", vol+":/data")
	docker(t, "exec", filler, "sh", "-c", "echo mine > /data/file && ln -s /etc /data/escape && mkdir /data/d && ln -s /etc/passwd /data/d/pw")
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil || !bytes.Contains(hostPasswd, []byte("root:")) {
		t.Fatalf("the host's /etc/passwd: %v", err)
	}

	dir := t.TempDir()
	out := backup(t, "run", "files", "--project", p.name, "--to", dir)
	mustContain(t, out, "via      this host's file system")
	m := onlyBackup(t, dir)
	raw := decompress(t, filepath.Join(dir, m.Artifact))
	if bytes.Contains(raw, []byte("root:x:0:0")) {
		t.Fatal("the backup holds the host's /etc/passwd")
	}
	links := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeSymlink {
			links[hdr.Name] = hdr.Linkname
		}
	}
	if links["data/escape"] != "/etc" || links["data/d/pw"] != "/etc/passwd" {
		t.Errorf("links archived: %v, want data/escape -> /etc and data/d/pw -> /etc/passwd", links)
	}

	// A path asked for through the link: refused, not read from the host's /etc.
	asked := t.TempDir()
	stdout, stderr, err := dockerCmd(nil, "backup", "run", "files", "--project", p.name, "--to", asked, "--paths", "/data/escape/passwd")
	if err == nil {
		for _, m := range listBackups(t, asked) {
			if bytes.Contains(decompress(t, filepath.Join(asked, m.Artifact)), []byte("root:x:0:0")) {
				t.Fatalf("a backup of /data/escape/passwd holds the host's /etc/passwd:\n%s\n%s", stdout, stderr)
			}
		}
	}
	if n := len(listBackups(t, asked)); err != nil && n != 0 {
		t.Errorf("a failed backup published %d artifacts", n)
	}
}
