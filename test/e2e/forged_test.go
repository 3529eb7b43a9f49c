package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
			nil, []string{"signed with another key", other.ID(), "DOCKER_BACKUP_TRUSTED_KEYS_FILE"}},
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
		{"a huge manifest", crafted{raw: harmless, source: map[string]string{"paths": "/data", "pad": strings.Repeat("x", 2<<20+1000)}, key: mine},
			nil, []string{"more than the 2097152 bytes a manifest can be"}},
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
		raw:    tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/hello.txt", content: "from the future\n"}),
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

// TestForgedThroughTheSidecar: the sidecar restores only what its key signed (unless asked),
// only backups of the kind its labels say, only into the job's paths; a backup dated in the
// future is never its latest and never counted or deleted by its retention.
func TestForgedThroughTheSidecar(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	app := p.volumeService("app", "docker-backup.schedule=@every 2s", "docker-backup.retention=2", "docker-backup.paths=/data/keep")
	docker(t, "exec", app, "sh", "-c", "mkdir -p /data/keep && echo real > /data/keep/x && echo other > /data/other")
	secrets := t.TempDir()
	keyFile := filepath.Join(secrets, "signing.key")
	if err := os.WriteFile(keyFile, []byte("the sidecar's signing key, shared with the test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := artifact.LoadSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sidecar, backups := startSidecar(t, p, "-v", secrets+":/run/secrets:ro", "-e", "DOCKER_BACKUP_SIGNING_KEY_FILE=/run/secrets/signing.key")
	dir := volumeDir(t, backups)
	mustContain(t, containerLogs(t, sidecar), key.ID())
	keep := func(content string) []byte {
		return tarOf(t, tarEntry{name: "data/keep", dir: true}, tarEntry{name: "data/keep/x", content: content})
	}
	future := craft(t, dir, crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", key: key, job: "default",
		raw: keep("from the future\n"), source: map[string]string{"paths": "/data/keep"}, created: time.Now().Add(30 * 24 * time.Hour)})

	// Retention keeps 2 real backups, and the future-dated one, never counted nor deleted.
	waitRuns(t, p.name, "app", "default", 4, 2*time.Minute)
	eventually(t, 30*time.Second, "retention", func() error {
		var keys []string
		for _, m := range sidecarBackups(t, p.name, "app") {
			keys = append(keys, m.Key)
		}
		if len(keys) != 3 || !contains(keys, future) {
			return fmt.Errorf("backups %q, want 2 real ones and %s", keys, future)
		}
		return nil
	})
	mustContain(t, containerLogs(t, sidecar), "retention keeps a backup dated in the future")

	// latest is the newest real backup, not the future-dated one. The sidecar goes on backing
	// up every 2 s: the restored content is the one of the key the restore names.
	docker(t, "exec", app, "sh", "-c", "echo changed > /data/keep/x")
	out := backup(t, "restore", "latest", "--to", "app", "--project", p.name, "--yes")
	restored := restoredKey(t, out)
	if restored == future {
		t.Fatalf("restore latest chose the future-dated backup %s", future)
	}
	want := artifactFile(t, filepath.Join(dir, filepath.FromSlash(restored)), "data/keep/x")
	if want != "real\n" && want != "changed\n" {
		t.Errorf("the backup %s holds %q", restored, want)
	}
	if got := docker(t, "exec", app, "cat", "/data/keep/x"); got != want {
		t.Errorf("restore latest restored %q, the backup %s holds %q", got, restored, want)
	}

	// A signed backup of another kind than the job's, or of paths outside the job's, is
	// refused; so is an unsigned one, unless asked.
	pg := craft(t, dir, crafted{project: p.name, service: "app", strategy: "postgres", ext: "sql", key: key, raw: []byte("SELECT 1;\n")})
	mustContain(t, backupFails(t, nil, "restore", pg, "--to", "app", "--project", p.name, "--yes"), "is a postgres backup", "backed up with volume")
	wide := craft(t, dir, crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", key: key,
		raw: tarOf(t, tarEntry{name: "data", dir: true}, tarEntry{name: "data/other", content: "forged\n"}), source: map[string]string{"paths": "/data"}})
	mustContain(t, backupFails(t, nil, "restore", wide, "--to", "app", "--project", p.name, "--yes"), "/data", "not inside a writable volume or bind mount", "/data/keep")
	unsigned := craft(t, dir, crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", raw: keep("unsigned\n"), source: map[string]string{"paths": "/data/keep"}})
	mustContain(t, backupFails(t, nil, "restore", unsigned, "--to", "app", "--project", p.name, "--yes"), "not signed", "--allow-unsigned")
	if got := docker(t, "exec", app, "sh", "-c", "cat /data/keep/x /data/other"); got != want+"other\n" {
		t.Errorf("refused restores changed the data: %q", got)
	}
	backup(t, "restore", unsigned, "--to", "app", "--project", p.name, "--yes", "--allow-unsigned")
	if got := docker(t, "exec", app, "cat", "/data/keep/x"); got != "unsigned\n" {
		t.Errorf("an allowed unsigned restore restored %q", got)
	}
	ls := backup(t, "ls", "--project", p.name, "--service", "app")
	for _, l := range strings.Split(ls, "\n") {
		if strings.HasPrefix(l, unsigned) && !strings.Contains(l, "unsigned") {
			t.Errorf("ls does not flag the unsigned backup: %q", l)
		}
	}
}

// restoredKey is the key a restore's output names ("Restored KEY into ...").
func restoredKey(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "Restored "); ok {
			if key, _, ok := strings.Cut(rest, " into "); ok {
				return key
			}
		}
	}
	t.Fatalf("the restore names no key:\n%s", out)
	return ""
}

// artifactFile is the content of one file of a local, unencrypted volume artifact.
func artifactFile(t *testing.T, artifactPath, name string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", `zstd -dc "$1" | tar -xOf - "$2"`, "sh", artifactPath, name).Output()
	if err != nil {
		t.Fatalf("reading %s from %s: %v", name, artifactPath, err)
	}
	return string(out)
}

// TestForgedBackupsNeverCountForRetention: whoever can only add objects to the target writes
// unsigned backups dated just before now. Retention counts and deletes only what a trusted
// key signed: keep-last=2 keeps the two newest signed backups, never deletes the forged ones,
// and reports them (status, the docker_backup_untrusted_backups metric, the log).
func TestForgedBackupsNeverCountForRetention(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	p.volumeService("app", "docker-backup.schedule=@every 2s", "docker-backup.retention=keep-last=2")
	sidecar, backups := startSidecar(t, p)
	dir := volumeDir(t, backups)
	waitRuns(t, p.name, "app", "default", 1, time.Minute)
	var forged []string
	for i := range 3 {
		forged = append(forged, craft(t, dir, crafted{project: p.name, service: "app", strategy: "volume", ext: "tar", job: "default",
			raw: tarOf(t, tarEntry{name: "data/x", content: "forged\n"}), source: map[string]string{"paths": "/data"},
			created: time.Now().Add(time.Duration(i) * time.Second)}))
	}
	// Runs go on: had the forged ones counted as the newest, every signed backup would go.
	first := waitRuns(t, p.name, "app", "default", 1, time.Minute).Runs["success"]
	waitRuns(t, p.name, "app", "default", first+4, 2*time.Minute)
	eventually(t, 30*time.Second, "retention", func() error {
		var signed, unsigned []string
		for _, s := range sidecarBackups(t, p.name, "app") {
			if s.Untrusted == "" {
				signed = append(signed, s.Key)
			} else {
				unsigned = append(unsigned, s.Key)
			}
		}
		slices.Sort(unsigned)
		slices.Sort(forged)
		if len(signed) != 2 || !slices.Equal(unsigned, forged) {
			return fmt.Errorf("signed %q, unsigned %q: want 2 signed and the 3 forged", signed, unsigned)
		}
		return nil
	})
	st := sidecarStatus(t, p.name)
	if j := jobStatus(st, "app", "default"); j == nil || j.Untrusted != 3 {
		t.Errorf("status: %+v", j)
	}
	mustContain(t, backup(t, "status", "-p", p.name), "3 untrusted left alone", "not signed by a key the sidecar trusts")
	ip := strings.TrimSpace(docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", sidecar))
	mustContain(t, httpGet(t, "http://"+ip+":9090/metrics"), `docker_backup_untrusted_backups{backup_job="default",project="`+p.name+`",service="app",strategy="volume",target="default"} 3`)
	mustContain(t, containerLogs(t, sidecar), "retention leaves alone a backup no trusted key signed")
}

// TestRestoreHostWithThePublicKeyOnly: a host that restores is given the backup host's public
// key (docker backup key), never its signing key: it restores what that host signed, refuses
// what anyone else signed, and cannot sign itself with what it holds.
func TestRestoreHostWithThePublicKeyOnly(t *testing.T) {
	t.Parallel()
	p := newProject(t)
	files := p.service("files", plainImage, append([]string{"-v", p.volume("files-data") + ":/data"}, idle...)...)
	docker(t, "exec", files, "sh", "-c", "echo original > /data/x")
	dir := t.TempDir()
	backup(t, "run", "files", "-p", p.name, "--strategy", "volume", "--to", dir)
	pub := strings.Fields(backup(t, "key"))
	if len(pub) < 2 || pub[0] != artifact.PublicKeyType {
		t.Fatalf("docker backup key printed %q", pub)
	}
	trusted := filepath.Join(t.TempDir(), "trusted.keys")
	if err := os.WriteFile(trusted, []byte(pub[0]+" "+pub[1]+" backup host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The restore host: a docker config of its own, without the plugin's signing key.
	restoreHost := t.TempDir()
	if err := os.Symlink(filepath.Join(dockerConfig, "cli-plugins"), filepath.Join(restoreHost, "cli-plugins")); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + restoreHost}
	docker(t, "exec", files, "sh", "-c", "echo changed > /data/x")
	mustContain(t, backupFails(t, env, "restore", "latest", "--from", dir, "--to", "files", "-p", p.name, "--yes"), "another key", "--trust")
	backupWithEnv(t, env, "restore", "latest", "--from", dir, "--to", "files", "-p", p.name, "--yes", "--trust", trusted)
	if got := docker(t, "exec", files, "cat", "/data/x"); got != "original\n" {
		t.Errorf("restored %q", got)
	}
	out := backupWithEnv(t, append(env, "DOCKER_BACKUP_TRUSTED_KEYS_FILE="+trusted), "ls", "--from", dir)
	if strings.Contains(out, "other key") || strings.Contains(out, "unsigned") {
		t.Errorf("ls on the restore host with the public key flags the backup:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(restoreHost, "docker-backup", "signing.key")); err == nil {
		t.Error("a restore made a signing key on the restore host")
	}
	// A backup signed by another key that claims the trusted key's ID is refused, and never
	// "latest".
	other, _ := artifact.NewSigningKey([]byte("another host's signing key, not trusted here"))
	forged := craft(t, dir, crafted{project: p.name, service: "files", strategy: "volume", ext: "tar", key: other,
		raw: tarOf(t, tarEntry{name: "data/x", content: "forged\n"}), source: map[string]string{"paths": "/data"},
		edit: func(m *artifact.Manifest) { m.Signature.KeyID = pluginKey(t).ID() }})
	mustContain(t, backupFails(t, env, "restore", forged, "--from", dir, "--to", "files", "-p", p.name, "--yes", "--trust", trusted), "tampered")
	out = backupWithEnv(t, env, "restore", "latest", "--from", dir, "--to", "files", "-p", p.name, "--yes", "--trust", trusted)
	if restoredKey(t, out) == forged {
		t.Error("restore latest chose the forged backup")
	}
	if got := docker(t, "exec", files, "cat", "/data/x"); got != "original\n" {
		t.Errorf("a forged backup changed the data: %q", got)
	}
}
