package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// TestBackupToSeveralTargets: one run writes the same backup to a directory, MinIO and a
// small tmpfs that fills up in the middle: the run says which target failed (exit status 1),
// the full one holds nothing, the others hold the same verified backup, which restores.
func TestBackupToSeveralTargets(t *testing.T) {
	t.Parallel()
	m := startMinio(t)
	m.bucket("offsite")
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs (the tests run as root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	local := t.TempDir()
	p := newProject(t)
	app := p.service("app", plainImage, append([]string{"-v", p.volume("data") + ":/data"}, idle...)...)
	docker(t, "exec", app, "sh", "-c", "head -c 30000000 /dev/urandom > /data/big && echo hello > /data/small")
	want := docker(t, "exec", app, "sh", "-c", "cd /data && md5sum big small")

	// Two targets that work: exit 0, both listed, the same bytes.
	out := backupWithEnv(t, m.env(), "run", "app", "--project", p.name, "--strategy", "volume", "--to", local, "--to", m.url("offsite/host1"))
	mustContain(t, out, "target   "+local, "target   s3://offsite/host1")
	onLocal, onS3 := listBackups(t, local), listBackupsWithEnv(t, m.env(), m.url("offsite/host1"))
	if len(onLocal) != 1 || len(onS3) != 1 || onLocal[0].SHA256 != onS3[0].SHA256 || onLocal[0].Artifact != onS3[0].Artifact {
		t.Fatalf("local %+v, S3 %+v: want the same backup on both", onLocal, onS3)
	}

	// A third target that fills up: stored on the two others, which the run says.
	out, stderr, err := dockerCmd(m.env(), "backup", "run", "app", "--project", p.name, "--strategy", "volume",
		"--to", local, "--to", small, "--to", m.url("offsite/host1"))
	if err == nil {
		t.Fatalf("a run with a full target succeeded:\n%s", out)
	}
	mustContain(t, out, "target   "+local+"\n", "target   "+small+": FAILED, nothing stored there", "no space left on device", "target   s3://offsite/host1 at ")
	mustContain(t, stderr, "is stored, but: stored on "+local+", s3://offsite/host1 at ", "but not on "+small+": writing", "no space left on device")
	if files := filesUnder(t, small); len(files) != 0 {
		t.Errorf("the full target holds %q", files)
	}
	onLocal, onS3 = listBackups(t, local), listBackupsWithEnv(t, m.env(), m.url("offsite/host1"))
	if len(onLocal) != 2 || len(onS3) != 2 || onLocal[0].SHA256 != onS3[0].SHA256 {
		t.Fatalf("after the partial run: local %d, S3 %d backups", len(onLocal), len(onS3))
	}

	// The copy on S3 restores to the original.
	docker(t, "exec", app, "sh", "-c", "rm /data/big && echo changed > /data/small")
	backupWithEnv(t, m.env(), "restore", onS3[0].Artifact, "--from", m.url("offsite/host1"), "--to", "app", "--project", p.name, "--yes")
	if got := docker(t, "exec", app, "sh", "-c", "cd /data && md5sum big small"); got != want {
		t.Errorf("restored from S3: %s, want %s", got, want)
	}
	if strings.Contains(stderr+out, m.secret) {
		t.Error("a credential was printed")
	}
}

// listBackupsWithEnv is listBackups of a target that needs credentials.
func listBackupsWithEnv(t *testing.T, env []string, from string) []artifact.Manifest {
	t.Helper()
	var ms []artifact.Manifest
	if err := json.Unmarshal([]byte(backupWithEnv(t, env, "ls", "--from", from, "--format", "json")), &ms); err != nil {
		t.Fatalf("decoding ls output: %v", err)
	}
	return ms
}
