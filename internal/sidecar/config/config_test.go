package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/labels"
	"github.com/docker-backup/docker-backup/internal/notify"
	"github.com/docker-backup/docker-backup/internal/retention"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := FromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets["default"] != "/backups" || cfg.StateDir != "/var/lib/docker-backup" || cfg.Listen != ":9090" ||
		cfg.MaxConcurrent != 1 || cfg.Timeout != 6*time.Hour || cfg.Resync != 5*time.Minute || cfg.AllProjects ||
		cfg.Prefix != nil || cfg.DefaultRetention != (retention.Policy{}) || cfg.CatalogBackup != "@daily" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestFromEnv(t *testing.T) {
	cfg, err := FromEnv([]string{
		"DOCKER_BACKUP_TARGET=s3://bucket/site?endpoint=minio:9000",
		"DOCKER_BACKUP_TARGET_OFF_SITE=/mnt/nas",
		"DOCKER_BACKUP_TARGET_OFF_SITE_FILE=/ignored", // not a target: _FILE forms are for secrets
		"DOCKER_BACKUP_TARGET_OFF_SITE_ACCESS_KEY_ID=key", "DOCKER_BACKUP_TARGET_OFF_SITE_SECRET_ACCESS_KEY=secret",
		"DOCKER_BACKUP_SCOPE=all", "DOCKER_BACKUP_PREFIX=/site-a/", "DOCKER_BACKUP_RETENTION=keep-daily=7",
		"DOCKER_BACKUP_MAX_CONCURRENT=3", "DOCKER_BACKUP_JITTER=30s", "TZ=Europe/Berlin", "DOCKER_BACKUP_CATALOG_SCHEDULE=off",
		"DOCKER_BACKUP_SCHEDULE=@daily",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.TargetNames(), ","); got != "default,off-site" || cfg.Targets["off-site"] != "/mnt/nas" {
		t.Errorf("targets %v", cfg.Targets)
	}
	if !cfg.AllProjects || *cfg.Prefix != "site-a" || cfg.DefaultRetention.Daily != 7 || cfg.MaxConcurrent != 3 ||
		cfg.Jitter != 30*time.Second || cfg.Location.String() != "Europe/Berlin" || cfg.CatalogBackup != "" || cfg.DefaultSchedule != "@daily" {
		t.Errorf("config %+v", cfg)
	}
	if p := cfg.CredentialsEnv("off-site"); p != "DOCKER_BACKUP_TARGET_OFF_SITE" {
		t.Errorf("credentials prefix %q", p)
	}
	empty, _ := FromEnv([]string{"DOCKER_BACKUP_PREFIX="})
	if empty.Prefix == nil || *empty.Prefix != "" {
		t.Error("an empty DOCKER_BACKUP_PREFIX must turn the default host prefix off")
	}
}

func TestConfigFromEnvNamesEveryBadValue(t *testing.T) {
	_, err := FromEnv([]string{"DOCKER_BACKUP_SCOPE=host", "DOCKER_BACKUP_MAX_CONCURRENT=0", "DOCKER_BACKUP_TIMEOUT=soon",
		"TZ=Mars/Olympus", "DOCKER_BACKUP_RETENTION=-3", "DOCKER_BACKUP_SCHEDULE=61 * * * *", "DOCKER_BACKUP_COMPRESSION=lz4",
		"DOCKER_BACKUP_TARGET_BAD!NAME=/x"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`DOCKER_BACKUP_SCOPE="host"`, `DOCKER_BACKUP_MAX_CONCURRENT="0"`, `DOCKER_BACKUP_TIMEOUT="soon"`,
		`TZ="Mars/Olympus"`, `DOCKER_BACKUP_RETENTION="-3"`, `DOCKER_BACKUP_SCHEDULE="61 * * * *"`, `DOCKER_BACKUP_COMPRESSION="lz4"`,
		`DOCKER_BACKUP_TARGET_BAD!NAME="/x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// A mistyped credential variable is a target name with a value that is no target: it is
// refused, and its value — a secret — is not printed.
func TestConfigRefusesNonTargetsWithoutPrintingSecrets(t *testing.T) {
	_, err := FromEnv([]string{"DOCKER_BACKUP_TARGET_OFFSITE_SECRET_KEY=wJalrXUtnFEMI/K7MDENG", "DOCKER_BACKUP_TARGET_NAS=backups",
		"DOCKER_BACKUP_TARGET=relative/dir", "DOCKER_BACKUP_TARGET_FTP=ftp://host/x", "DOCKER_BACKUP_HOOK_TIMEOUT=0s"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"DOCKER_BACKUP_TARGET_OFFSITE_SECRET_KEY (value not shown)", `DOCKER_BACKUP_TARGET_NAS="backups": a target is an absolute`,
		`DOCKER_BACKUP_TARGET="relative/dir"`, `DOCKER_BACKUP_TARGET_FTP="ftp://host/x"`, "DOCKER_BACKUP_HOOK_TIMEOUT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "wJalrXUtnFEMI") {
		t.Errorf("a secret was printed:\n%s", msg)
	}
}

func TestTargetsFromTheSidecarsLabels(t *testing.T) {
	cfg, _ := FromEnv([]string{"DOCKER_BACKUP_TARGET_OFFSITE=s3://env-wins"})
	err := cfg.AddLabelTargets(map[string]string{
		"docker-backup.target.archive": "/archive", "docker-backup.target.offsite": "s3://label-loses",
		"docker-backup.target.default": "/srv/backups", "docker-backup.sidecar": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets["archive"] != "/archive" || cfg.Targets["offsite"] != "s3://env-wins" || cfg.Targets["default"] != "/srv/backups" {
		t.Errorf("targets %v", cfg.Targets)
	}
	env, _ := FromEnv([]string{"DOCKER_BACKUP_TARGET=/from-env"})
	env.AddLabelTargets(map[string]string{"docker-backup.target.default": "/from-label"})
	if env.Targets["default"] != "/from-env" {
		t.Errorf("default target %q, want the environment's", env.Targets["default"])
	}
	if err := cfg.AddLabelTargets(map[string]string{"docker-backup.target.Bad Name": "/x"}); err == nil || !strings.Contains(err.Error(), "docker-backup.target.Bad Name") {
		t.Errorf("bad name: %v", err)
	}
}

func FuzzConfigFromEnv(f *testing.F) {
	f.Add("DOCKER_BACKUP_TARGET_OFFSITE", "s3://b/p?endpoint=x", "DOCKER_BACKUP_RETENTION", "keep-daily=7")
	f.Add("DOCKER_BACKUP_SCHEDULE", "CRON_TZ=UTC 0 2 * * *", "TZ", "Europe/Berlin")
	f.Add("DOCKER_BACKUP_MAX_CONCURRENT", "-1", "DOCKER_BACKUP_PREFIX", "/a/../b/")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		cfg, err := FromEnv([]string{k1 + "=" + v1, k2 + "=" + v2})
		if err != nil {
			if !strings.Contains(err.Error(), "invalid configuration") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if cfg.Targets["default"] == "" || cfg.MaxConcurrent < 1 || cfg.Resync <= 0 || cfg.Location == nil {
			t.Fatalf("accepted an unusable configuration: %+v", cfg)
		}
		for name := range cfg.Targets {
			if !labels.ValidName(name) {
				t.Fatalf("accepted target name %q", name)
			}
		}
	})
}

func TestNotifySets(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/urls"
	if err := os.WriteFile(file, []byte("ntfy://ntfy.example.com/backups-topic-secret\ngeneric+https://hooks.example.com/t0ken-abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := FromEnv([]string{"DOCKER_BACKUP_NOTIFY_URLS=generic+https://hooks.example.com/default-token",
		"DOCKER_BACKUP_NOTIFY_URLS_OPS_TEAM_FILE=" + file, "DOCKER_BACKUP_NOTIFY_LEVEL=info"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NotifySets["default"]) != 1 || len(cfg.NotifySets["ops-team"]) != 2 || cfg.NotifyLevel != notify.LevelInfo {
		t.Errorf("sets %v, level %v", cfg.NotifySets, cfg.NotifyLevel)
	}
	_, err = FromEnv([]string{"DOCKER_BACKUP_NOTIFY_URLS=generic+https://hooks.example.com/ok,nosuch://user:hunter2-secret@x", "DOCKER_BACKUP_NOTIFY_LEVEL=loud"})
	if err == nil || !strings.Contains(err.Error(), "DOCKER_BACKUP_NOTIFY_URLS (value not shown), URL 2") || !strings.Contains(err.Error(), "DOCKER_BACKUP_NOTIFY_LEVEL=\"loud\"") {
		t.Errorf("error %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("the error shows a secret: %v", err)
	}
}

// A variable that may hold a secret never becomes a target (whose URL is shown in status and
// logs), even when its value starts with "/" as a secret may: the sidecar refuses to start,
// naming the variable, never its value. Nor does an s3:// URL with credentials in it.
func TestConfigRefusesSecretsAsTargets(t *testing.T) {
	secrets := []string{"/wJalrXUtnFEMI/K7MDENG+bPxRfiCY", "/hunter2-correct-horse", "/eu-central-9z", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtn/FEMI?K7MD"}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"DOCKER_BACKUP_TARGET_OFFSITE=s3://b/p", "DOCKER_BACKUP_TARGET_OFFSITE_SECRET=" + secrets[0]},
			"DOCKER_BACKUP_TARGET_OFFSITE_SECRET (value not shown): a target's name must not have KEY, SECRET"},
		{[]string{"DOCKER_BACKUP_TARGET_NAS_PASSWORD=" + secrets[1]},
			"DOCKER_BACKUP_TARGET_NAS_PASSWORD (value not shown)"},
		{[]string{"DOCKER_BACKUP_TARGET_OFFSITE=s3://b/p", "DOCKER_BACKUP_TARGET_OFFSITE_REGION=" + secrets[2]},
			"DOCKER_BACKUP_TARGET_OFFSITE_REGION (value not shown): not a setting of the target DOCKER_BACKUP_TARGET_OFFSITE"},
		{[]string{"DOCKER_BACKUP_TARGET=s3://" + secrets[3] + ":" + secrets[0][1:] + "@bucket/site"},
			"DOCKER_BACKUP_TARGET (value not shown): a target URL must not hold credentials"},
		{[]string{"DOCKER_BACKUP_TARGET_OFFSITE=s3://" + secrets[3] + ":" + secrets[4] + "@bucket"},
			"DOCKER_BACKUP_TARGET_OFFSITE (value not shown): a target URL must not hold credentials"},
	} {
		cfg, err := FromEnv(tc.env)
		if err == nil {
			t.Errorf("%v: accepted, targets %v", tc.env, cfg.Targets)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error does not say %q:\n%v", tc.env, tc.want, err)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "K7MDENG") {
				t.Errorf("%v: the error shows a secret:\n%v", tc.env, err)
			}
		}
	}
	cfg, _ := FromEnv(nil)
	err := cfg.AddLabelTargets(map[string]string{"docker-backup.target.offsite": "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI@b"})
	if err == nil || !strings.Contains(err.Error(), "docker-backup.target.offsite (value not shown)") || strings.Contains(err.Error(), "wJalrXUtnFEMI") {
		t.Errorf("a label's URL with credentials: %v", err)
	}
	// A target whose name extends no other's, and the settings of a target, are still fine.
	if _, err := FromEnv([]string{"DOCKER_BACKUP_TARGET_OFF_SITE=/mnt/nas", "DOCKER_BACKUP_TARGET_OFF_SITE_ACCESS_KEY_ID_FILE=/run/secrets/k",
		"DOCKER_BACKUP_TARGET_OFF_SITE_SESSION_TOKEN=t", "DOCKER_BACKUP_TARGET_NAS=/nas"}); err != nil {
		t.Error(err)
	}
	// A secret's word inside a name is not one of its parts.
	if cfg, err := FromEnv([]string{"DOCKER_BACKUP_TARGET_MONKEY=/mnt/a", "DOCKER_BACKUP_TARGET_PASSAU=/mnt/b"}); err != nil || cfg.Targets["monkey"] == "" || cfg.Targets["passau"] == "" {
		t.Errorf("targets monkey and passau: %+v, %v", cfg.Targets, err)
	}
}

// Every setting is documented in docs/sidecar.md, and has its own doc text here.
func TestEverySettingIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/sidecar.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if name := strings.TrimSuffix(s.env, "_FILE"); !strings.Contains(string(doc), "`"+name) || s.doc == "" {
			t.Errorf("%s is not in docs/sidecar.md, or has no doc text", s.env)
		}
	}
}

func TestTrustedKeys(t *testing.T) {
	k, _ := artifact.NewSigningKey([]byte(strings.Repeat("h", 32)))
	file := filepath.Join(t.TempDir(), "trusted.keys")
	os.WriteFile(file, []byte("# host 3\n"+k.Public().String()+" host3\n"), 0o600)
	cfg, err := FromEnv([]string{"DOCKER_BACKUP_TRUSTED_KEYS=" + k.Public().String() + " host2", "DOCKER_BACKUP_TRUSTED_KEYS_FILE=" + file})
	if err != nil || len(cfg.TrustedKeys) != 2 || cfg.TrustedKeys[0].ID() != k.ID() {
		t.Fatalf("trusted keys %v, %v", cfg.TrustedKeys, err)
	}
	for _, env := range [][]string{
		{"DOCKER_BACKUP_TRUSTED_KEYS=ssh-ed25519 AAAAC3Nza"},
		{"DOCKER_BACKUP_TRUSTED_KEYS_FILE=relative/keys"},
		{"DOCKER_BACKUP_TRUSTED_KEYS_FILE=/nonexistent/keys"},
	} {
		if _, err := FromEnv(env); err == nil || !strings.Contains(err.Error(), "DOCKER_BACKUP_TRUSTED_KEYS") {
			t.Errorf("%q: %v", env, err)
		}
	}
}

// TestUploadLimits: DOCKER_BACKUP_LIMIT_UPLOAD caps every target, a target's own variable
// replaces it (off: none), and neither is read as a target.
func TestUploadLimits(t *testing.T) {
	cfg, err := FromEnv([]string{
		"DOCKER_BACKUP_TARGET=s3://bucket/site",
		"DOCKER_BACKUP_TARGET_OFFSITE=s3://other/site", "DOCKER_BACKUP_TARGET_OFFSITE_LIMIT_UPLOAD=2MB/s",
		"DOCKER_BACKUP_TARGET_NAS_BOX=/mnt/nas", "DOCKER_BACKUP_TARGET_NAS_BOX_LIMIT_UPLOAD=off",
		"DOCKER_BACKUP_TARGET_LIMIT_UPLOAD=500KiB/s",
		"DOCKER_BACKUP_TARGET_LAN=/mnt/lan",
		"DOCKER_BACKUP_LIMIT_UPLOAD=10MiB/s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.TargetNames(), ","); got != "default,lan,nas-box,offsite" {
		t.Errorf("targets %v", cfg.Targets)
	}
	for name, want := range map[string]bandwidth.Rate{"default": 500 << 10, "offsite": 2_000_000, "nas-box": 0, "lan": 10 << 20} {
		if got := cfg.UploadLimit(name); got != want {
			t.Errorf("UploadLimit(%s) = %v, want %v", name, got, want)
		}
	}
	none, _ := FromEnv(nil)
	if none.UploadLimit("default") != 0 {
		t.Error("a cap without a setting")
	}
	_, err = FromEnv([]string{"DOCKER_BACKUP_LIMIT_UPLOAD=fast", "DOCKER_BACKUP_TARGET_X=/x", "DOCKER_BACKUP_TARGET_X_LIMIT_UPLOAD=10Mbit/s"})
	for _, want := range []string{`DOCKER_BACKUP_LIMIT_UPLOAD="fast"`, `DOCKER_BACKUP_TARGET_X_LIMIT_UPLOAD="10Mbit/s"`, "10MiB/s, 500KiB/s, 2MB/s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad caps: %v, want %q", err, want)
		}
	}
}

// An sftp:// target and its own key and known hosts files; the files' variables are its
// settings, not targets; a password in the URL is refused and never shown.
func TestSFTPTargets(t *testing.T) {
	cfg, err := FromEnv([]string{
		"DOCKER_BACKUP_TARGET=sftp://backup@nas:2222/backups",
		"DOCKER_BACKUP_TARGET_BOX=sftp://u123@u123.your-storagebox.de:23//home/backups",
		"DOCKER_BACKUP_TARGET_BOX_SFTP_KEY_FILE=/run/secrets/box_key",
		"DOCKER_BACKUP_TARGET_BOX_SFTP_KNOWN_HOSTS=/etc/docker-backup/known_hosts",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.TargetNames(), ","); got != "box,default" || cfg.Targets["box"] != "sftp://u123@u123.your-storagebox.de:23//home/backups" {
		t.Errorf("targets %v", cfg.Targets)
	}
	for _, env := range [][]string{
		{"DOCKER_BACKUP_TARGET=sftp://backup:hunter2@nas/backups"},
		{"DOCKER_BACKUP_TARGET_BOX=sftp://backup:hunter2@nas/backups"},
	} {
		_, err := FromEnv(env)
		if err == nil || !strings.Contains(err.Error(), "must not hold a password") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %v", env, err)
		}
	}
	_, err = FromEnv([]string{"DOCKER_BACKUP_TARGET_BOX=sftp://nas/backups"})
	if err == nil || !strings.Contains(err.Error(), "names no user") {
		t.Errorf("a URL without a user: %v", err)
	}
	if err := CheckTargetURL("sftp://backup@nas/b"); err != nil {
		t.Error(err)
	}
}
