package commands

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/enginetest"
)

// A target URL with credentials in it is refused by every command that takes one, saying
// where credentials go, and the secret is shown nowhere (a "/" in it ends url.Parse's host).
func TestTargetURLWithCredentialsIsRefused(t *testing.T) {
	api := enginetest.New(enginetest.Service("shop", "db"))
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"
	url := "s3://AKIAIOSFODNN7EXAMPLE:" + secret + "@backups/site?endpoint=minio:9000"
	for _, args := range [][]string{
		{"run", "db", "--project", "shop", "--to", url},
		{"restore", "latest", "--from", url, "--to", "db", "--project", "shop"},
		{"ls", "--from", url},
		{"verify", "latest", "--from", url, "--service", "db", "--project", "shop"},
		{"target", "check", url},
	} {
		t.Run(args[0], func(t *testing.T) {
			cli := newFakeCli(api)
			err := cli.run(t, args...)
			mustFail(t, err, "must not hold credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY_FILE")
			for _, s := range []string{err.Error(), cli.out.String(), cli.err.String()} {
				if strings.Contains(s, "K7MDENG") || strings.Contains(s, "AKIAIOSFODNN7EXAMPLE") {
					t.Errorf("the credentials are shown: %s", s)
				}
			}
		})
	}
}

// An sftp:// URL with a password is refused the same way, saying where the key comes from; one
// without a user is refused naming the form.
func TestSFTPURLWithPasswordIsRefused(t *testing.T) {
	api := enginetest.New(enginetest.Service("shop", "db"))
	for _, args := range [][]string{
		{"run", "db", "--project", "shop", "--to", "sftp://backup:hunter2@nas/backups"},
		{"ls", "--from", "sftp://backup:hunter2@nas/backups"},
		{"target", "check", "sftp://backup:hunter2@nas/backups"},
	} {
		t.Run(args[0], func(t *testing.T) {
			cli := newFakeCli(api)
			err := cli.run(t, args...)
			mustFail(t, err, "must not hold a password", "DOCKER_BACKUP_SFTP_KEY_FILE")
			for _, s := range []string{err.Error(), cli.out.String(), cli.err.String()} {
				if strings.Contains(s, "hunter2") {
					t.Errorf("the password is shown: %s", s)
				}
			}
		})
	}
	err := newFakeCli(api).run(t, "ls", "--from", "sftp://nas/backups")
	mustFail(t, err, "names no user", "sftp://USER@HOST[:PORT]/PATH")
}
