package targets

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/sftp"
)

// Red team: URL forms a user may well write with a secret in them, which are not refused as
// such and whose error (or target name, shown in status, logs and the catalog) repeats the
// secret. Each should be refused (target.SecretInURL) without the URL, or at least never
// show the secret.
func TestRedTeamSecretsInURLFormsAreShown(t *testing.T) {
	t.Setenv(sftp.EnvSFTPKnownHosts, "/dev/null")
	t.Chdir(t.TempDir()) // a file:// URL taken as a directory is made there
	const secret = "hunter2SECRET"
	for _, u := range []string{
		// Credentials as query options, as several S3 tools take them: "unknown option" shows the URL.
		"s3://bucket/prefix?endpoint=minio:9000&aws_secret_access_key=" + secret,
		"s3://bucket/prefix?secret_key=" + secret,
		// A user name with an "@" in it (an e-mail address), then a password.
		"sftp://me@corp.example:" + secret + "@nas/backups",
		// A password as an option.
		"sftp://backup@nas/backups?password=" + secret,
		// An unknown scheme whose token is an option, not user info.
		"webdav://nas/backups?token=" + secret,
		// file:// with user info is taken as a directory named after it.
		"file://backup:" + secret + "@nas/share",
	} {
		err := CheckURL(u)
		shown := ""
		if err != nil {
			shown = err.Error()
		} else if tg, oerr := Open(u); oerr != nil {
			shown = oerr.Error()
		} else {
			shown = "accepted as target " + tg.String()
		}
		if strings.Contains(shown, secret) {
			t.Errorf("%s: the secret is shown: %s", u, shown)
		}
	}
}

// Red team: what rsync, scp and restic (sftp:user@host:/path) users write for a remote
// directory, and a scheme with one slash, are taken as local directories relative to the
// working directory: backups meant to leave the host silently stay on it (made there by the
// first backup), and a password in them is shown as the target's name.
func TestRedTeamRemoteLookingSpecsAreLocalDirectories(t *testing.T) {
	t.Setenv(sftp.EnvSFTPKnownHosts, "/dev/null")
	t.Chdir(t.TempDir())
	for _, spec := range []string{
		"backup@nas.example:/srv/backups",       // scp, rsync
		"sftp:backup@nas.example:/srv/backups",  // restic
		"sftp:/backup@nas.example/srv/backups",  // a slash missing
		"backup:hunter2SECRET@nas.example:/srv", // scp with a password
	} {
		tg, err := Open(spec)
		if err != nil {
			continue
		}
		if _, local := tg.(*target.Local); local {
			t.Errorf("%q is taken as the local directory %s", spec, tg)
		}
	}
}
