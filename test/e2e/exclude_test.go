package e2e

import (
	"strings"
	"testing"
)

// excludeExtras adds what the exclusions below leave out, and what they keep beside it.
const excludeExtras = `set -e
mkdir -p /data/cache/sub /data/tmp /data/dir/tmp /data/logs /config/tmp
echo a > /data/cache/a
echo b > /data/cache/sub/b
ln /data/cache/a /data/hard-to-cache
echo l > /data/app.log
echo l > /data/logs/x.log
echo k > /data/logs/keep.log
echo t > /data/tmp/t
echo t > /data/dir/tmp/t
echo c > /config/tmp/c
`

// excludePatterns: every syntax element, relative to each backed-up path (/config, /data).
var excludePatterns = []string{"*.log", "!keep.log", "cache/", "/tmp", "dir/**/*.bin"}

// excludedEntries removes from the tree what excludePatterns leave out: the tree a restore of
// the backup into emptied volumes must give.
const excludedEntries = `rm -rf /data/cache /data/app.log /data/logs/x.log /data/tmp /config/tmp /data/dir/random.bin`

// TestVolumeExclusions backs up a volume with exclusions on each data path (in place, a worker,
// the archive API), restores it into emptied volumes, and finds the original tree without the
// excluded entries: not one more, not one less (a kept hard link to an excluded file holds its
// content); verify passes.
func TestVolumeExclusions(t *testing.T) {
	t.Parallel()
	for _, dp := range dataPaths {
		t.Run(dp.name, func(t *testing.T) {
			t.Parallel()
			env := dataPathEnv(dp.mode)
			f := newVolumeFixture(t)
			f.sh(excludeExtras)
			dir := t.TempDir()
			args := []string{"backup", "run", "files", "--project", f.p.name, "--to", dir}
			for _, p := range excludePatterns {
				args = append(args, "--exclude", p)
			}
			out, stderr, err := dockerCmd(env, args...)
			if err != nil {
				t.Fatalf("docker backup run: %v\n%s\n%s", err, out, stderr)
			}
			mustContain(t, out, "excluded *.log, !keep.log, cache/, /tmp, dir/**/*.bin")
			m := onlyBackup(t, dir)
			if m.Source["data_path"] != dp.name || m.Source["exclude"] != strings.Join(excludePatterns, "\n") {
				t.Errorf("manifest: data path %q, exclude %q", m.Source["data_path"], m.Source["exclude"])
			}

			f.sh(excludedEntries)
			want := f.tree()
			for _, kept := range []string{"data/logs/keep.log|f", "data/dir/tmp/t|f", "data/hard-to-cache|f|", "data/dir/sub/numbers.txt|f|4750"} {
				if !strings.Contains(want, kept) {
					t.Fatalf("the expected tree lacks %q:\n%s", kept, want)
				}
			}
			f.sh("find /data /config -mindepth 1 -delete")
			backupWithEnv(t, env, "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
			if got := f.tree(); got != want {
				t.Errorf("the restored tree is not the original without the excluded entries:\n%s", diffLines(want, got))
			}
			// Verify restores into a scratch copy and compares the tree digests (the scratch
			// copy's counted on the same data path, leaving out the same entries).
			mustContain(t, backupWithEnv(t, env, "verify", m.Artifact, "--from", dir), "PASS")
		})
	}
}

// TestVolumeExclusionsRefused: a bad pattern, and --exclude with a database strategy, are
// refused before anything runs, saying why.
func TestVolumeExclusionsRefused(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	out := backupFails(t, nil, "run", "files", "--project", f.p.name, "--to", dir, "--exclude", "logs/[a-")
	mustContain(t, out, `exclude pattern "logs/[a-"`, "a trailing / matches directories only")
	out = backupFails(t, nil, "run", "files", "--project", f.p.name, "--to", dir, "--strategy", "postgres", "--exclude", "*.log")
	mustContain(t, out, "apply to the volume strategy only")
	if files := filesUnder(t, dir); len(files) != 0 {
		t.Errorf("refused backups left %q", files)
	}
}

// TestSidecarExclusionLabel: the label docker-backup.exclude is a job's exclusions.
func TestSidecarExclusionLabel(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.exclude=*.log, cache/")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/cache /data/d && echo x > /data/cache/x && echo l > /data/a.log && echo k > /data/d/keep")
	_, backups := startSidecar(t, p)
	mustContain(t, backup(t, "run", "app", "--project", p.name), "by sidecar")
	ms := sidecarBackups(t, p.name, "app")
	if len(ms) != 1 {
		t.Fatalf("backups: %+v", ms)
	}
	if m := manifestFile(t, volumeDir(t, backups), ms[0].Key); m.Source["exclude"] != "*.log\ncache/" {
		t.Errorf("the manifest's exclusions: %q", m.Source["exclude"])
	}
	docker(t, "exec", app, "sh", "-c", "find /data -mindepth 1 -delete")
	backup(t, "restore", "latest", "--to", "app", "--project", p.name, "--yes")
	if got := strings.TrimSpace(docker(t, "exec", app, "sh", "-c", "cd /data && find . | LC_ALL=C sort")); got != ".\n./d\n./d/keep" {
		t.Errorf("restored:\n%s\nwant ., ./d, ./d/keep", got)
	}
}

// TestS3UploadCap: a 50 MB backup to the real MinIO at --limit-upload 10MiB/s takes the cap's
// time (see capRun for the bounds).
func TestS3UploadCap(t *testing.T) {
	t.Parallel()
	s3 := startMinio(t)
	s3.bucket("capped")
	s3.bucket("free")
	p := newProject(t)
	blob := p.service("blob", plainImage, append([]string{"-v", p.volume("blob") + ":/data"}, idle...)...)
	docker(t, "exec", blob, "sh", "-c", "head -c 50000000 /dev/urandom > /data/blob.bin")
	capRun(t, "MinIO", s3.env(), p.name, "blob", s3.url("capped/cap"), s3.url("free/cap"))
	if n := len(s3.objects("capped")); n != 3 {
		t.Errorf("%d objects, want the artifact, its chunk list and its manifest", n)
	}
}
