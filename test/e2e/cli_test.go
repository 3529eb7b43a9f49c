package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestPluginIsADockerCLIPlugin(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(pluginBinary, "docker-cli-plugin-metadata").Output()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(out, &meta); err != nil {
		t.Fatalf("metadata is not JSON: %v\n%s", err, out)
	}
	if meta["SchemaVersion"] != "0.1.0" || meta["Vendor"] == "" || meta["Version"] == "" {
		t.Errorf("metadata: %v", meta)
	}
	help := backup(t, "--help")
	mustContain(t, help, "detect", "run", "restore", "ls")
	top, _, _ := dockerCmd(nil, "--help")
	mustContain(t, top, "backup*")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	vol := p.volume("data")
	p.service("files", pauseImage, "-v", vol+":/data")
	dir := t.TempDir()
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o600)
	pgKey := writeArtifact(t, dir, p.name, "db", "postgres", "sql", []byte("SELECT 1;\n"))

	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"unknown service", nil, []string{"run", "nosuch", "--project", p.name, "--to", dir},
			[]string{`"nosuch"`, p.name, "its services: files"}},
		{"unknown project", nil, []string{"run", "files", "--project", "no-such-project-x", "--to", dir},
			[]string{`no compose project "no-such-project-x"`}},
		{"unknown strategy", nil, []string{"run", "files", "--project", p.name, "--strategy", "oracle", "--to", dir},
			[]string{`unknown strategy "oracle"`, "mongo, mysql, postgres, redis, sqlite, volume"}},
		{"unknown compression", nil, []string{"run", "files", "--project", p.name, "--compression", "lz4", "--to", dir},
			[]string{`unknown compression "lz4"`, "zstd or gzip"}},
		{"relative path", nil, []string{"run", "files", "--project", p.name, "--paths", "data", "--to", dir},
			[]string{`path "data" must be absolute`}},
		{"no target", nil, []string{"run", "files", "--project", p.name},
			[]string{"no target given"}},
		{"target not writable", nil, []string{"run", "files", "--project", p.name, "--to", filepath.Join(notADir, "sub")},
			[]string{"cannot create backup directory", "not a directory"}},
		{"docker unreachable", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"run", "files", "--project", p.name, "--to", dir},
			[]string{"cannot reach the Docker engine", "unix:///nonexistent/docker.sock", "DOCKER_HOST"}},
		{"restore onto another strategy", nil, []string{"restore", pgKey, "--from", dir, "--to", "files", "--project", p.name, "--yes"},
			[]string{"refusing to restore", "postgres backup", "does not look like a postgres server"}},
		{"restore unknown backup", nil, []string{"restore", "x/y/z.sql.zst", "--from", dir, "--to", "files", "--project", p.name, "--yes"},
			[]string{`no backup "x/y/z.sql.zst"`, "docker backup ls"}},
		{"restore without --to", nil, []string{"restore", pgKey, "--from", dir},
			[]string{"pass --to SERVICE"}},
		{"status without a sidecar", nil, []string{"status", "--project", p.name},
			[]string{"no running docker-backup sidecar in compose project " + p.name}},
		{"status bad format", nil, []string{"status", "--project", p.name, "--format", "yaml"},
			[]string{`unknown --format "yaml"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stderr := backupFails(t, tc.env, tc.args...)
			mustContain(t, stderr, tc.want...)
		})
	}

	// A volume backup restored without --yes on a non-terminal stdin is refused, untouched.
	backup(t, "run", "files", "--project", p.name, "--to", dir)
	ms := listBackups(t, dir)
	if ms[0].Strategy != "volume" {
		t.Fatalf("newest backup is %+v, want the volume backup", ms[0])
	}
	stderr := backupFails(t, nil, "restore", ms[0].Artifact, "--from", dir, "--to", "files", "--project", p.name)
	mustContain(t, stderr, "pass --yes")
}
