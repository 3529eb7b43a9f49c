package targets

import (
	"strings"
	"testing"
)

// Red team (second round): secrets in odd places of the new kinds' URLs must never be shown
// by CheckURL (what every command and the sidecar run first) nor by an accepted target's
// name. smb's user info is not decoded: USER%3APASSWORD@ (a password written URL-encoded,
// as URL builders write it) is taken as a user name, shown in String() and sent as the user.
func TestRedTeam2URLSecretsNeverShown(t *testing.T) {
	for _, raw := range []string{
		"azure://bk/p%zz?sv=2021-08-06&s%69g=S3CRET",
		"gs://bk/p%zz?access_token=ya29.S3CRET",
		"webdav://nas/b%zz?password=S3CRET",
		"webdav://alice:S3CRET@nas/b%zz",
		"webdav://alice%3AS3CRET@nas/b",
		"webdav+http://alice:S3CRET@nas:99999/b",
		"smb://DOM;alice:S3CRET@nas/share",
		"smb://alice%3AS3CRET@nas/share",
		"smb://DOM%3Balice:S3CRET@nas/share",
		"smb:/alice:S3CRET@nas/share",
		"rclone:,token=S3CRET:",
		"rclone:drive{token=S3CRET}:",
		"rclone:sftp,pass=S3CRET",
		`rclone:"sftp,pass=S3CRET":`,
	} {
		err := CheckURL(raw)
		if err != nil && strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%q: the error shows the secret: %v", raw, err)
		}
		if err != nil {
			continue
		}
		// Accepted: the target's name (in status, logs, the catalog) must not hold it either.
		tg, err := Open(raw)
		if err == nil && strings.Contains(tg.String(), "S3CRET") {
			t.Errorf("%q: accepted, and the target's name shows the secret: %s", raw, tg)
		}
	}
}
