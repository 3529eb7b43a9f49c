package targets

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/azure"
	"github.com/docker-backup/docker-backup/internal/target/s3"
	"github.com/docker-backup/docker-backup/internal/target/sftp"
	"github.com/docker-backup/docker-backup/internal/target/webdav"
)

func TestOpen(t *testing.T) {
	if _, err := Open(""); err == nil || !strings.Contains(err.Error(), "no target given") {
		t.Errorf("Open(\"\") = %v", err)
	}
	if _, err := Open("ftp://host/x"); err == nil || !strings.Contains(err.Error(), `unsupported scheme "ftp"`) || !strings.Contains(err.Error(), "sftp://USER@HOST") {
		t.Errorf("Open(ftp) = %v", err)
	}
	dir := t.TempDir()
	for _, spec := range []string{dir, "file://" + dir} {
		tg, err := Open(spec)
		if err != nil || tg.String() != dir {
			t.Errorf("Open(%s) = %v, %v", spec, tg, err)
		}
		if _, ok := tg.(*target.Local); !ok {
			t.Errorf("Open(%s) = %T, want a directory", spec, tg)
		}
	}
	if tg, err := Open("s3://bucket/p?endpoint=localhost:9000"); err != nil {
		t.Errorf("s3: %v", err)
	} else if _, ok := tg.(*s3.Target); !ok {
		t.Errorf("s3 URL opened as %T", tg)
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", "acct")
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2022-11-02&sig=x")
	if tg, err := Open("azure://backups/p"); err != nil {
		t.Errorf("azure: %v", err)
	} else if _, ok := tg.(*azure.Target); !ok || !strings.Contains(tg.String(), "https://acct.blob.core.windows.net") {
		t.Errorf("azure URL opened as %T %s", tg, tg)
	}
	t.Setenv(sftp.EnvSFTPKnownHosts, "/dev/null")
	if tg, err := Open("sftp://u@h/p"); err != nil {
		t.Errorf("sftp: %v", err)
	} else if _, ok := tg.(*sftp.Target); !ok {
		t.Errorf("sftp URL opened as %T", tg)
	}
	for _, u := range []string{"webdav://nas/dav", "webdav+http://nas:8080/dav"} {
		if tg, err := Open(u); err != nil {
			t.Errorf("%s: %v", u, err)
		} else if _, ok := tg.(*webdav.Target); !ok || tg.String() != u {
			t.Errorf("%s opened as %T %s", u, tg, tg)
		}
	}
}

// A secret in any URL is refused without the URL being shown, whatever its scheme.
func TestSecretsInURLsAreRefusedUnshown(t *testing.T) {
	for _, u := range []string{
		"s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtn/FEMIK7MDENG@bucket/prefix",
		"sftp://backup:hunter2secret@nas/b",
		"ftp://user:hunter2secret@host/x",
		"webdav://alice:hunter2secret@nas/dav",
		"webdav+http://alice:hunter2secret@nas/dav",
		"azure://backups/p?sv=2022-11-02&sig=hunter2secret",
	} {
		_, err := Open(u)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("%s: %v, want a refusal of the secret", u, err)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "FEMIK7MDENG")) {
			t.Errorf("the error shows the secret: %v", err)
		}
		if err := CheckURL(u); !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("CheckURL(%s): %v", u, err)
		}
	}
}

func TestSettingsAndForms(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if k.Form == "" || k.Check == nil || k.Open == nil || k.Secrets == nil {
			t.Errorf("kind %s is incomplete", k.Scheme)
		}
		if !strings.HasPrefix(k.Form, k.Scheme+"://") && !strings.HasPrefix(k.Form, k.Scheme+":") {
			t.Errorf("kind %s: form %q does not start with its scheme", k.Scheme, k.Form)
		}
		for _, s := range k.Settings {
			if seen[s] {
				t.Errorf("setting %s is claimed twice", s)
			}
			seen[s] = true
		}
	}
}
