package labels

import (
	"strings"
	"testing"
)

// Red team: a service's docker-backup.target names a target defined on the sidecar. A user
// who writes the URL there instead (with its credentials, as some tools take them) has it
// repeated by the error ("no target %q is defined"), which the sidecar logs and `status`
// shows. The sidecar refuses such a URL unshown in its own variables and labels; a service's
// label should be treated alike.
func TestRedTeamServiceTargetLabelShowsAURLsSecret(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENG"
	for _, v := range []string{
		"s3://AKIAEXAMPLE:" + secret + "@bucket/prefix",
		"sftp://backup:" + secret + "@nas/backups",
	} {
		_, errs := Parse("shop-db-1", map[string]string{
			"docker-backup.enable":   "true",
			"docker-backup.strategy": "volume",
			"docker-backup.schedule": "@daily",
			"docker-backup.target":   v,
		}, opts)
		if len(errs) == 0 {
			t.Errorf("%s accepted as a target's name", v)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		}
	}
}
