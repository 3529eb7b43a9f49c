package e2e

import (
	"strings"
	"testing"
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

func TestVolumeRoundTrip(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	before := f.tree()
	for _, want := range []string{"data/link-to-hello|l|777|4321|8765|9|hello.txt", "data/empty|d|1777", "data/dir/sub/numbers.txt|f|4750", "data|d|755|999|999", "ünïcødé name ✓.txt"} {
		if !strings.Contains(before, want) {
			t.Fatalf("the fixture lacks %q; tree:\n%s", want, before)
		}
	}

	dir := t.TempDir()
	// The app container has no shell and no tar: the backup must use the archive API.
	out := backup(t, "run", "files", "--project", f.p.name, "--to", dir)
	mustContain(t, out, "volume")
	m := onlyBackup(t, dir)
	if m.Strategy != "volume" || m.Source["paths"] != "/config,/data" {
		t.Errorf("manifest: strategy %q paths %q, want volume /config,/data", m.Strategy, m.Source["paths"])
	}

	f.sh(changeScript)
	if f.tree() == before {
		t.Fatal("the changes did not change the tree")
	}
	// Restore by path, into the running container: it is stopped and started again.
	out = backup(t, "restore", dir+"/"+m.Artifact, "--to", "files", "--project", f.p.name, "--yes")
	mustContain(t, out, "Restored")
	if after := f.tree(); after != before {
		t.Errorf("tree after restore differs from the original:\n%s", diffLines(before, after))
	}
	if !running(t, f.app) {
		t.Error("the app container was not started again after the restore")
	}
}

func TestVolumeBackupOfStoppedContainerWithGzip(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	before := f.tree()
	docker(t, "stop", f.app)
	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir, "--compression", "gzip", "--paths", "/data")
	m := onlyBackup(t, dir)
	if m.Compression != "gzip" || !strings.HasSuffix(m.Artifact, ".tar.gz") || m.Source["paths"] != "/data" {
		t.Errorf("manifest: %+v", m)
	}
	f.sh(changeScript)
	backup(t, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
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
	backup(t, "run", "app", "--project", p.name, "--to", dir)
	docker(t, "exec", filler, "sh", "-c", "rm -rf /data/a /data/l")
	backup(t, "restore", "latest", "--from", dir, "--to", "app", "--project", p.name, "--yes")
	if after := hash(); after != before {
		t.Errorf("read-only container's volume after restore:\n%s", diffLines(before, after))
	}
	if !running(t, app) {
		t.Error("the container was not started again")
	}
}
