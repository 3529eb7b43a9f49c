package rclone

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// localRemote writes an rclone.conf with a remote "loc" of type local and returns the
// config file and the directory the remote's paths are under.
func localRemote(t *testing.T) (conf, dir string) {
	t.Helper()
	dir = t.TempDir()
	conf = filepath.Join(t.TempDir(), "rclone.conf")
	body := "# a comment\n[other]\ntype = drive\ntoken = {\"access_token\":\"SECRET\"}\n\n[loc]\ntype = local\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, dir
}

func open(t *testing.T, conf, path string) *Target {
	t.Helper()
	cfg, err := ParseURL("rclone:loc:" + path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConfigFile = conf
	tg, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestRcloneContract(t *testing.T) {
	targettest.Contract(t, func(t *testing.T) target.Target {
		conf, dir := localRemote(t)
		return open(t, conf, dir)
	})
}

func TestRcloneParseURL(t *testing.T) {
	for _, ok := range []string{"rclone:gdrive:backups/site", "rclone:my remote:", "rclone:b2:bucket/x/", "rclone:sftp:/srv/backups"} {
		if _, err := ParseURL(ok); err != nil {
			t.Errorf("ParseURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"rclone:gdrive", "rclone::x", "rclone:a:../x", "s3://x", "rclone:x:a/./b", "rclone:x://a"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	for _, secret := range []string{"rclone::drive,token=abc:x", "rclone:gd,client_secret=s3cr3t:x", "rclone:gd,token='x':"} {
		_, err := ParseURL(secret)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("ParseURL(%q) = %v, want a refusal of a secret", secret, err)
		}
		if err != nil && (strings.Contains(err.Error(), "abc") || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "'x'")) {
			t.Errorf("the refusal shows the secret: %v", err)
		}
	}
	if got := (Config{Remote: "gd", Path: "a/b"}).String(); got != "rclone:gd:a/b" {
		t.Errorf("String = %q", got)
	}
}

func TestRcloneRefusesUnknownRemotes(t *testing.T) {
	conf, _ := localRemote(t)
	for remote, want := range map[string]string{
		"nope":  `no remote "nope" in the rclone config file`,
		"other": "", // drive: included
	} {
		_, err := New(context.Background(), Config{Remote: remote, ConfigFile: conf})
		if want == "" {
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error shows the token: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%s) = %v, want %q", remote, err, want)
		}
	}
	bad := filepath.Join(t.TempDir(), "rclone.conf")
	os.WriteFile(bad, []byte("[m]\ntype = mega\n"), 0o600)
	if _, err := New(context.Background(), Config{Remote: "m", ConfigFile: bad}); err == nil || !strings.Contains(err.Error(), "does not include") {
		t.Errorf("a backend not built in: %v", err)
	}
	crypt := filepath.Join(t.TempDir(), "rclone.conf")
	os.WriteFile(crypt, []byte("[c]\ntype = crypt\nremote = loc:x\npassword = pw\n"), 0o600)
	if _, err := New(context.Background(), Config{Remote: "c", ConfigFile: crypt}); err == nil || !strings.Contains(err.Error(), "wraps another remote") {
		t.Errorf("a crypt remote: %v", err)
	}
	if strings.Contains(Backends(), "crypt") {
		t.Errorf("Backends lists crypt: %s", Backends())
	}
	enc := filepath.Join(t.TempDir(), "rclone.conf")
	os.WriteFile(enc, []byte("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nabcdef\n"), 0o600)
	if _, err := New(context.Background(), Config{Remote: "m", ConfigFile: enc}); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("an encrypted config: %v", err)
	}
}

func TestRcloneConfigFileFromEnv(t *testing.T) {
	conf, dir := localRemote(t)
	t.Setenv("DOCKER_BACKUP_TARGET_OFF_RCLONE_CONFIG", conf)
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "missing.conf"))
	cfg, _ := ParseURL("rclone:loc:" + dir)
	cfg.CredentialsEnv = "DOCKER_BACKUP_TARGET_OFF"
	if _, err := New(context.Background(), cfg); err != nil {
		t.Fatalf("the named target's config file: %v", err)
	}
	cfg.CredentialsEnv = ""
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "named by RCLONE_CONFIG") {
		t.Errorf("RCLONE_CONFIG naming a missing file: %v", err)
	}
}

func TestRcloneHidesTemporariesAndSweeps(t *testing.T) {
	conf, dir := localRemote(t)
	tg := open(t, conf, dir)
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "p", ".a"+target.TempMarker+"123")
	os.WriteFile(tmp, []byte("partial"), 0o600)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(tmp, old, old)
	if keys := targettest.Keys(t, tg, ""); len(keys) != 0 {
		t.Errorf("a temporary object lists: %v", keys)
	}
	removed, err := tg.RemoveStale(ctx, "p/", time.Now().Add(-time.Hour))
	if err != nil || len(removed) != 1 {
		t.Errorf("RemoveStale = %v, %v", removed, err)
	}
	os.WriteFile(tmp, []byte("partial"), 0o600)
	if err := tg.RemoveIncomplete(ctx, "p/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RemoveIncomplete left %s", tmp)
	}
}

func TestRcloneParseSection(t *testing.T) {
	s, err := parseSection(strings.NewReader("[a]\ntype = sftp\n; c\n[b]\ntype=drive\ntoken = {\"x\":\"=y\"}\n"), "b")
	if err != nil || s["type"] != "drive" || s["token"] != `{"x":"=y"}` {
		t.Errorf("parseSection = %v, %v", s, err)
	}
}

func TestRcloneRequirementAndBuffer(t *testing.T) {
	conf, dir := localRemote(t)
	tg := open(t, conf, dir)
	if r := tg.Requirement("write"); !strings.Contains(r, "loc") {
		t.Errorf("Requirement = %q", r)
	}
	if tg.BufferSize() != 0 {
		t.Errorf("a local remote buffers %d", tg.BufferSize())
	}
}

// A link at a key itself on the local disk is refused too: the local backend would read and
// pin what it names.
func TestRcloneLocalLinkAtKeyRefused(t *testing.T) {
	conf, dir := localRemote(t)
	outside := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(outside, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "proj"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "proj", "key")); err != nil {
		t.Fatal(err)
	}
	tg := open(t, conf, dir)
	if _, err := tg.Get(context.Background(), "proj/key"); !errors.Is(err, ErrLink) {
		t.Errorf("Get of a link at the key = %v, want ErrLink", err)
	}
	if _, err := target.Pin(context.Background(), tg, "proj/key"); !errors.Is(err, ErrLink) {
		t.Errorf("Pin of a link at the key = %v, want ErrLink", err)
	}
}
