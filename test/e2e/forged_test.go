package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// Forged backups: whoever can write the target can write artifacts and manifests with any
// checksum. A restore trusts only what it can prove: a manifest signed with its key, and even
// then writes only inside the container's writable mounts and never through links.

// tarOf builds a volume archive of entries (name → content; a name ending in "/" is a
// directory, "->target" a symlink; mode 04755 makes it set-user-ID).
type tarEntry struct {
	name, content, link string
	dir                 bool
	mode                int64
}

func tarOf(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.content)), ModTime: time.Now()}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if e.mode != 0 {
			hdr.Mode = e.mode
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.content))
	}
	tw.Close()
	return b.Bytes()
}

func TestForgedBackupsAreRefused(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	p := f.p
	dir := t.TempDir()
	other, err := artifact.NewSigningKey([]byte(strings.Repeat("another key, not the plugin's ", 2)))
	if err != nil {
		t.Fatal(err)
	}
	mine := pluginKey(t)
	harmless := tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/hello.txt", content: "forged\n"})
	before := f.tree()
	startedAt := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app)

	cases := []struct {
		name  string
		c     crafted
		flags []string
		wants []string
	}{
		{"unsigned", crafted{raw: harmless, source: map[string]string{"paths": "/data"}},
			nil, []string{"its manifest is not signed", "--allow-unsigned"}},
		{"signed with another key", crafted{raw: harmless, source: map[string]string{"paths": "/data"}, key: other},
			nil, []string{"signed with another key", other.ID(), "DOCKER_BACKUP_SIGNING_KEY_FILE"}},
		{"manifest edited after signing", crafted{raw: harmless, source: map[string]string{"paths": "/data"}, key: mine,
			edit: func(m *artifact.Manifest) { m.Source["paths"] = "/usr/local/bin" }},
			[]string{"--allow-unsigned"}, []string{"changed after it was signed", "tampered", "untouched"}},
		{"paths outside the mounts", crafted{raw: tarOf(t, tarEntry{name: "usr/local/bin", dir: true}, tarEntry{name: "usr/local/bin/evil", content: "x", mode: 0o755}),
			source: map[string]string{"paths": "/usr/local/bin"}},
			[]string{"--allow-unsigned"}, []string{"/usr/local/bin", "not inside a writable volume or bind mount", "/config, /data"}},
		{"a write through a symlink", crafted{raw: tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/escape", link: "/usr/local/bin"},
			tarEntry{name: "data/escape/evil", content: "x"}), source: map[string]string{"paths": "/data"}, key: mine},
			nil, []string{"data/escape/evil", "not a directory of the archive"}},
		{"a set-user-ID file unsigned", crafted{raw: tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/suid", content: "x", mode: 0o4755}),
			source: map[string]string{"paths": "/data"}},
			[]string{"--allow-unsigned"}, []string{"data/suid", "set-user-ID"}},
		{"entries out of order", crafted{raw: tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/b", content: "x"}, tarEntry{name: "data/a", content: "y"}),
			source: map[string]string{"paths": "/data"}, key: mine},
			nil, []string{`"data/a" comes after "data/b"`}},
		{"another service's directory", crafted{raw: harmless, source: map[string]string{"paths": "/data"}, key: mine, dir: p.name + "/db"},
			nil, []string{"lives under " + p.name + "/files/"}},
		{"a kind the service is not", crafted{strategy: "postgres", ext: "sql", raw: []byte("SELECT 1;\n"), key: mine},
			nil, []string{"is a postgres backup", "does not look like a postgres server"}},
		{"a huge manifest", crafted{raw: harmless, source: map[string]string{"paths": "/data", "pad": strings.Repeat("x", 70000)}, key: mine},
			nil, []string{"more than the 65536 bytes a manifest can be"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.project, c.service = p.name, "files"
			if c.strategy == "" {
				c.strategy, c.ext = "volume", "tar"
			}
			key := craft(t, dir, c)
			args := append([]string{"restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes"}, tc.flags...)
			stderr := backupFails(t, nil, args...)
			mustContain(t, stderr, tc.wants...)
			if after := f.tree(); after != before {
				t.Errorf("a refused restore changed the data:\n%s", diffLines(before, after))
			}
			if now := docker(t, "inspect", "-f", "{{.State.StartedAt}}", f.app); now != startedAt || !running(t, f.app) {
				t.Error("a refused restore stopped or restarted the container")
			}
			docker(t, "exec", f.filler, "sh", "-c", "! test -e /usr/local/bin/evil")
		})
	}

	// A harmless unsigned backup is restored when asked explicitly, with a warning.
	key := craft(t, dir, crafted{project: p.name, service: "files", strategy: "volume", ext: "tar", raw: harmless, source: map[string]string{"paths": "/data"}})
	_, stderr, err := dockerCmd(nil, "backup", "restore", key, "--from", dir, "--to", "files", "--project", p.name, "--yes", "--allow-unsigned")
	if err != nil {
		t.Fatalf("restore --allow-unsigned: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "not signed with this tool's key")
	if got := f.sh("cat /data/hello.txt"); got != "forged\n" {
		t.Errorf("hello.txt = %q after an allowed unsigned restore", got)
	}
}

// Backups dated in the future (a host whose clock is ahead, or a forger) are never "latest",
// and ls says so.
func TestForgedFutureBackupIsNeverLatest(t *testing.T) {
	t.Parallel()
	f := newVolumeFixture(t)
	dir := t.TempDir()
	backup(t, "run", "files", "--project", f.p.name, "--to", dir, "--paths", "/data")
	real := onlyBackup(t, dir).Artifact
	future := craft(t, dir, crafted{project: f.p.name, service: "files", strategy: "volume", ext: "tar", key: pluginKey(t),
		raw: tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/hello.txt", content: "from the future\n"}),
		source: map[string]string{"paths": "/data"}, created: time.Now().Add(90 * 24 * time.Hour)})
	ls := backup(t, "ls", "--from", dir)
	for _, l := range strings.Split(ls, "\n") {
		if strings.HasPrefix(l, future) && !strings.Contains(l, "dated in the future") {
			t.Errorf("ls does not flag the future-dated backup: %q", l)
		}
	}
	f.sh(changeScript)
	_, stderr, err := dockerCmd(nil, "backup", "restore", "latest", "--from", dir, "--to", "files", "--project", f.p.name, "--yes")
	if err != nil {
		t.Fatalf("restore latest: %v\n%s", err, stderr)
	}
	mustContain(t, stderr, "latest skips "+future, "dated in the future")
	if got := f.sh("cat /data/hello.txt"); got != "hello\n" {
		t.Errorf("restore latest took the future-dated backup instead of %s: hello.txt = %q", real, got)
	}
}

// A PostgreSQL script with a psql command that runs a program is refused before psql sees
// it, even signed; a SQLite path or a Redis directory outside the mounts too.
func TestForgedDatabaseBackupsAreRefused(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	db := startPostgres(t, p, "db")
	db.sql(`CREATE TABLE keep (id int); INSERT INTO keep VALUES (1)`)
	dir := t.TempDir()
	key := craft(t, dir, crafted{project: p.name, service: "db", strategy: "postgres", ext: "sql", key: pluginKey(t),
		raw: []byte("DROP TABLE keep;\n\\! touch /tmp/owned\n")})
	stderr := backupFails(t, nil, "restore", key, "--from", dir, "--to", "db", "--project", p.name, "--yes")
	mustContain(t, stderr, `the psql command "\\! touch /tmp/owned"`, "untouched")
	if got := db.sql(`SELECT count(*) FROM keep`); got != "1" {
		t.Errorf("the table was dropped")
	}
	if _, _, err := dockerCmd(nil, "exec", db.container, "test", "-e", "/tmp/owned"); err == nil {
		t.Error("the forged script ran a program in the database container")
	}
	// A COMMIT in the middle would commit half a restore: not what pg_dump writes.
	key = craft(t, dir, crafted{project: p.name, service: "db", strategy: "postgres", ext: "sql", key: pluginKey(t),
		raw: []byte("DROP TABLE keep;\nEND;\nSELECT 1/0;\n")})
	mustContain(t, backupFails(t, nil, "restore", key, "--from", dir, "--to", "db", "--project", p.name, "--yes"), `"END"`, "never writes")
	if got := db.sql(`SELECT count(*) FROM keep`); got != "1" {
		t.Errorf("the table was dropped")
	}

	// SQLite: a database file outside the container's mounts.
	app := p.service("app", sqliteImage(t), append([]string{"-v", p.volume("appdata") + ":/data"}, idle...)...)
	key = craft(t, dir, crafted{project: p.name, service: "app", strategy: "sqlite", ext: "sqlite.tar", key: pluginKey(t),
		raw: tarOf(t, tarEntry{name: "passwd", content: "SQLite format 3\x00 forged"}), source: map[string]string{"path": "/etc/passwd"}})
	mustContain(t, backupFails(t, nil, "restore", key, "--from", dir, "--to", "app", "--project", p.name, "--yes"),
		"/etc/passwd", "not inside a writable volume or bind mount")
	if got := docker(t, "exec", app, "head", "-c", "4", "/etc/passwd"); got != "root" {
		t.Errorf("/etc/passwd was overwritten: %q", got)
	}

	// Redis, stopped (it cannot be asked where its data lives): the manifest's dir is not
	// believed outside the mounts.
	r := startRedis(t, newProject(t), "", false)
	docker(t, "stop", r.container)
	rp := strings.TrimSuffix(r.container, "-cache-1")
	rdb := append([]byte("REDIS0011"), bytes.Repeat([]byte{0}, 64)...)
	key = craft(t, dir, crafted{project: rp, service: "cache", strategy: "redis", ext: "rdb", key: pluginKey(t), raw: rdb,
		source: map[string]string{"dir": "/usr/local/bin", "dbfilename": "redis-server", "appendonly": "no"}})
	mustContain(t, backupFails(t, nil, "restore", key, "--from", dir, "--to", "cache", "--project", rp, "--yes"),
		"the redis data directory", "not inside a writable volume")
	docker(t, "start", r.container)
	if out := r.try("PING"); out != "PONG" {
		eventually(t, time.Minute, "redis back", func() error {
			if out := r.try("PING"); out != "PONG" {
				return fmt.Errorf("PING: %s", out)
			}
			return nil
		})
	}
	_ = os.Remove
	_ = filepath.Join
}
