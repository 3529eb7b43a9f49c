package targets

import (
	"context"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/azure"
	"github.com/docker-backup/docker-backup/internal/target/gcs"
	"github.com/docker-backup/docker-backup/internal/target/rclone"
	"github.com/docker-backup/docker-backup/internal/target/s3"
	"github.com/docker-backup/docker-backup/internal/target/sftp"
	"github.com/docker-backup/docker-backup/internal/target/smb"
	"github.com/docker-backup/docker-backup/internal/target/webdav"
)

// gcsKind is Google Cloud Storage: gs://BUCKET/PREFIX.
func gcsKind() Kind {
	return Kind{
		Scheme:   "gs",
		Form:     "gs://BUCKET[/PREFIX][?endpoint=http://HOST:PORT]",
		Settings: []string{"GOOGLE_APPLICATION_CREDENTIALS"},
		Secrets: func(p string) string {
			return "the service-account key file " + p + "GOOGLE_APPLICATION_CREDENTIALS names"
		},
		Check: func(url string) error { _, err := gcs.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := gcs.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return gcs.New(cfg)
		},
	}
}

// azureKind is Azure Blob Storage: azure://CONTAINER/PREFIX.
func azureKind() Kind {
	return Kind{
		Scheme:   "azure",
		Form:     "azure://CONTAINER[/PREFIX][?endpoint=URL]",
		Settings: []string{"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ENDPOINT"},
		Secrets: func(p string) string {
			return p + "AZURE_STORAGE_ACCOUNT with " + p + "AZURE_STORAGE_KEY or " + p + "AZURE_STORAGE_SAS_TOKEN, or their _FILE forms"
		},
		Check: func(url string) error { _, err := azure.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := azure.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return azure.New(cfg)
		},
	}
}

// s3Kind is an S3-compatible bucket: s3://BUCKET/PREFIX.
func s3Kind() Kind {
	return Kind{
		Scheme:   "s3",
		Form:     "s3://BUCKET[/PREFIX][?endpoint=HOST[:PORT]&region=…]",
		Settings: []string{"ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"},
		Secrets: func(p string) string {
			return p + "ACCESS_KEY_ID and " + p + "SECRET_ACCESS_KEY, or their _FILE forms"
		},
		Check: func(url string) error { _, err := s3.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := s3.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return s3.New(cfg)
		},
	}
}

// rcloneKind is a remote of the user's rclone.conf: rclone:REMOTE:PATH.
func rcloneKind() Kind {
	return Kind{
		Scheme:   "rclone",
		Opaque:   true,
		Form:     rclone.Form,
		Settings: []string{rclone.EnvConfig},
		Secrets: func(p string) string {
			if p == "" {
				return "the remote's section of rclone.conf (" + rclone.EnvConfig + ")"
			}
			return "the remote's section of the rclone.conf " + p + rclone.EnvConfig + " names"
		},
		Check: func(url string) error { _, err := rclone.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := rclone.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return rclone.New(context.Background(), cfg)
		},
	}
}

// sftpKind is a directory on an SSH server: sftp://USER@HOST/PATH.
func sftpKind() Kind {
	return Kind{
		Scheme:   "sftp",
		Form:     "sftp://USER@HOST[:PORT]/PATH",
		Settings: []string{"SFTP_KEY_FILE", "SFTP_KNOWN_HOSTS"},
		Secrets:  func(p string) string { return "the key file " + p + "SFTP_KEY_FILE names" },
		Check:    func(url string) error { _, err := sftp.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := sftp.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return sftp.New(cfg)
		},
	}
}

// smbKind is a folder of an SMB share: smb://USER@HOST/SHARE/PATH.
func smbKind() Kind {
	return Kind{
		Scheme:   "smb",
		Form:     "smb://[DOMAIN;]USER@HOST[:PORT]/SHARE[/PATH]",
		Settings: []string{"SMB_PASSWORD"},
		Secrets:  func(p string) string { return p + "SMB_PASSWORD, or its _FILE form" },
		Check:    func(url string) error { _, err := smb.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := smb.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return smb.New(cfg)
		},
	}
}

// webdavKind is the WebDAV target over https (webdav://) or, named so, cleartext http; both
// read the same settings, listed once.
func webdavKind(scheme, form string, settings []string) Kind {
	return Kind{
		Scheme:   scheme,
		Form:     form,
		Settings: settings,
		Secrets: func(p string) string {
			return p + "WEBDAV_USERNAME and " + p + "WEBDAV_PASSWORD, or its _FILE form"
		},
		Check: func(url string) error { _, err := webdav.ParseURL(url); return err },
		Open: func(url, env string) (target.Target, error) {
			cfg, err := webdav.ParseURL(url)
			if err != nil {
				return nil, err
			}
			cfg.CredentialsEnv = env
			return webdav.New(cfg)
		},
	}
}
