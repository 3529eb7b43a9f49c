package e2e

import (
	"strings"
	"testing"
)

// Red team: docs/strategies.md promises "A restore leaves the excluded files in the service's
// volume as they are". TestVolumeExclusions restores into emptied volumes only. Here the
// volume keeps living after the backup: the excluded files change (a cache refilled, a log
// grown, a file that was kept turned into an excluded directory's neighbour), then the backup
// is restored over it on each data path. The excluded entries must be exactly as they were
// just before the restore, the others as in the backup.
func TestRedTeamRestoreKeepsExcludedFiles(t *testing.T) {
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
			if out, stderr, err := dockerCmd(env, args...); err != nil {
				t.Fatalf("docker backup run: %v\n%s\n%s", err, out, stderr)
			}
			m := onlyBackup(t, dir)
			// Life goes on: the excluded entries change, new excluded ones appear.
			f.sh(`set -e
echo refilled > /data/cache/a
echo new > /data/cache/sub/new
echo grown >> /data/app.log
echo new > /data/logs/new.log
echo t2 > /data/tmp/t
mkdir -p /data/tmp/deep && echo d > /data/tmp/deep/d
echo c2 > /config/tmp/c`)
			excluded := `cd / && for p in data/cache data/app.log data/logs/new.log data/logs/x.log data/tmp config/tmp; do
  find "$p" -exec sh -c 'for e; do if [ -f "$e" ]; then echo "$e $(cat "$e" | md5sum)"; else echo "$e"; fi; done' sh {} + ; done | LC_ALL=C sort`
			before := f.sh(excluded)
			out, stderr, err := dockerCmd(env, "backup", "restore", m.Artifact, "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
			if err != nil {
				t.Fatalf("restore: %v\n%s\n%s", err, out, stderr)
			}
			after, _, _ := dockerCmd(nil, "exec", f.filler, "sh", "-c", excluded)
			if after != before {
				t.Errorf("the restore changed the excluded entries of the live volume:\n%s", diffLines(before, after))
			}
			if !strings.Contains(after, "data/cache/sub/new") {
				t.Errorf("an excluded file made after the backup is gone")
			}
		})
	}
}
