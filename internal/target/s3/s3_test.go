package s3

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
)

func TestParseS3URL(t *testing.T) {
	cfg, err := ParseURL("s3://backups/site-a//nested/?endpoint=http://127.0.0.1:9000&part-size=32MiB&checksum=crc32c")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: "backups", Prefix: "site-a/nested", Endpoint: "127.0.0.1:9000", Secure: false, Region: "us-east-1",
		PathStyle: true, PartSize: 32 << 20, Checksum: "crc32c"}
	if cfg != want {
		t.Errorf("ParseURL = %+v\nwant %+v", cfg, want)
	}
	aws, err := ParseURL("s3://my-backups?region=eu-central-1")
	if err != nil || aws.Endpoint != "" || !aws.Secure || aws.PathStyle || aws.Prefix != "" || aws.Region != "eu-central-1" || aws.PartSize != DefaultPartSize {
		t.Errorf("AWS URL = %+v, %v", aws, err)
	}
	vhost, _ := ParseURL("s3://b/p?endpoint=https://s3.example.com&path-style=false")
	if vhost.PathStyle || !vhost.Secure {
		t.Errorf("path-style=false = %+v", vhost)
	}
	uni, _ := ParseURL("s3://b/ünï/prefix/")
	if uni.Prefix != "ünï/prefix" {
		t.Errorf("unicode prefix = %q", uni.Prefix)
	}
	for raw, wantErr := range map[string]string{
		"s3:///prefix":                     "names no bucket",
		"s3://b?endpont=x":                 `unknown option "endpont"`,
		"s3://b?endpoint=ftp://x":          `scheme "ftp"`,
		"s3://b?part-size=1MiB":            "between 5MiB and 5GiB",
		"s3://b?checksum=md5":              "crc64nvme, crc32c or none",
		"s3://b?path-style=maybe":          "true or false",
		"http://b":                         "not an s3:// URL",
		"s3://b/../../escape?endpoint=x:1": "",
	} {
		_, err := ParseURL(raw)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("ParseURL(%q) = %v", raw, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("ParseURL(%q) = %v, want an error mentioning %q", raw, err, wantErr)
		}
	}
	esc, _ := ParseURL("s3://b/../../escape")
	if esc.Prefix != "escape" {
		t.Errorf("prefix with .. = %q, want it cleaned to escape", esc.Prefix)
	}
}

func TestS3ObjectKeys(t *testing.T) {
	s := &Target{cfg: Config{Bucket: "b", Prefix: "host/x"}}
	if got := s.object("p/s/a.zst"); got != "host/x/p/s/a.zst" {
		t.Errorf("object = %q", got)
	}
	if got := (&Target{cfg: Config{Bucket: "b"}}).object("p/s/a.zst"); got != "p/s/a.zst" {
		t.Errorf("object without prefix = %q", got)
	}
	if !strings.Contains(s.String(), "s3://b/host/x") {
		t.Errorf("String = %q", s.String())
	}
}

func TestS3CredentialsPerTarget(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("offsite-secret\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "aws-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_ACCESS_KEY_ID", "offsite-key")
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_SECRET_ACCESS_KEY_FILE", secretFile)
	for prefix, want := range map[string][2]string{
		"":                             {"aws-key", "aws-secret"},
		"DOCKER_BACKUP_TARGET_OFFSITE": {"offsite-key", "offsite-secret"},
		"DOCKER_BACKUP_TARGET_NOTHING": {"aws-key", "aws-secret"}, // none of its own: AWS_* apply
	} {
		creds, err := s3Credentials(prefix)
		if err != nil {
			t.Fatal(err)
		}
		v, err := creds.GetWithContext(nil)
		if err != nil || v.AccessKeyID != want[0] || v.SecretAccessKey != want[1] {
			t.Errorf("prefix %q: %s/%s, %v; want %v", prefix, v.AccessKeyID, v.SecretAccessKey, err, want)
		}
	}
	t.Setenv("DOCKER_BACKUP_TARGET_BROKEN_ACCESS_KEY_ID_FILE", filepath.Join(dir, "missing"))
	if _, err := s3Credentials("DOCKER_BACKUP_TARGET_BROKEN"); err == nil || !strings.Contains(err.Error(), "DOCKER_BACKUP_TARGET_BROKEN_ACCESS_KEY_ID_FILE") {
		t.Errorf("a missing secret file: %v", err)
	}
}

// Credentials in an s3:// URL are refused without showing them, however the secret would
// split the URL ("/" and "?" end url.Parse's host early).
func TestS3URLWithCredentialsIsRefused(t *testing.T) {
	for _, u := range []string{
		"s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENG@bucket/prefix",
		"s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtn/FEMIK7MDENG@bucket/prefix",
		"s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtn?FEMIK7MDENG@bucket",
		"s3://AKIAIOSFODNN7EXAMPLE@bucket",
	} {
		_, err := ParseURL(u)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("%s: %v", u, err)
		}
		if err != nil && (strings.Contains(err.Error(), "FEMIK7MDENG") || strings.Contains(err.Error(), "AKIAIOSFODNN7EXAMPLE")) {
			t.Errorf("the error shows the credentials: %v", err)
		}
	}
}
