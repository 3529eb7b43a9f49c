package config

import (
	"fmt"
	"strings"
	"testing"
)

// Red team: a secret put where a user might (an S3 option, a password option, an e-mail
// user name, an unknown scheme's token, file:// user info) in the sidecar's environment or
// labels reaches its error message (the container's log), or is taken as a target whose name
// status shows.
func TestRedTeamSidecarShowsSecretsOfSomeURLForms(t *testing.T) {
	const secret = "hunter2SECRET"
	urls := []string{
		"s3://bucket/prefix?aws_secret_access_key=" + secret,
		"sftp://me@corp.example:" + secret + "@nas/backups",
		"sftp://backup@nas/backups?password=" + secret,
		"webdav://nas/backups?token=" + secret,
		"file://backup:" + secret + "@nas/share",
	}
	for i, u := range urls {
		for _, env := range [][]string{{"DOCKER_BACKUP_TARGET=" + u}, {fmt.Sprintf("DOCKER_BACKUP_TARGET_OFFSITE%d=%s", i, u)}} {
			cfg, err := FromEnv(env)
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows the secret: %v", env[0], err)
			}
			for name, tg := range cfg.Targets {
				if err == nil && strings.Contains(tg, secret) {
					t.Errorf("%s: accepted as target %s = %s (shown by status)", env[0], name, tg)
				}
			}
		}
		cfg, _ := FromEnv(nil)
		if err := cfg.AddLabelTargets(map[string]string{"docker-backup.target.offsite": u}); err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("label %s: the error shows the secret: %v", u, err)
		}
		for name, tg := range cfg.Targets {
			if strings.Contains(tg, secret) {
				t.Errorf("label %s: accepted as target %s = %s (shown by status)", u, name, tg)
			}
		}
	}
}
