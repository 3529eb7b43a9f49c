package e2e

import (
	"fmt"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/s3"
	"github.com/docker-backup/docker-backup/internal/target/sftp"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
)

// TestTargetContract holds every kind of remote target to the contract (internal/target/
// targettest) against its real server: MinIO for S3, OpenSSH for SFTP.
func TestTargetContract(t *testing.T) {
	t.Run("S3", func(t *testing.T) {
		m := startMinio(t)
		m.bucket("contract")
		t.Setenv("E2E_CONTRACT_ACCESS_KEY_ID", m.user)
		t.Setenv("E2E_CONTRACT_SECRET_ACCESS_KEY", m.secret)
		n := 0
		targettest.Contract(t, func(t *testing.T) target.Target {
			n++
			cfg, err := s3.ParseURL(m.url(fmt.Sprintf("contract/run%d", n)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.CredentialsEnv = "E2E_CONTRACT"
			tg, err := s3.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return tg
		})
	})
	t.Run("SFTP", func(t *testing.T) {
		srv := startSSHD(t)
		n := 0
		targettest.Contract(t, func(t *testing.T) target.Target {
			n++
			cfg, err := sftp.ParseURL(srv.url(fmt.Sprintf("contract/run%d", n)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.KeyFile, cfg.KnownHosts = srv.clientKey, srv.knownHosts
			tg, err := sftp.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tg.Close() })
			return tg
		})
	})
}
