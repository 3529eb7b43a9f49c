package rclone

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/fserrors"
)

// explain says which of authentication, permission, quota or network an rclone error is,
// where rclone or the service tells, naming the remote (never its token).
func explain(cfg Config, err error) error {
	msg := strings.ToLower(err.Error())
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(msg, w) {
				return true
			}
		}
		return false
	}
	var ne net.Error
	switch {
	case has("invalid_grant", "unauthorized", "invalid_client", "expired_access_token", "invalid_access_token", "401", "unable to authenticate", "bad_auth_token"):
		return fmt.Errorf("authentication failed: the token or key of the remote %q in rclone.conf was refused (expired or revoked? run `rclone config reconnect %s:`): %w", cfg.Remote, cfg.Remote, err)
	case errors.Is(err, fs.ErrorPermissionDenied), errors.Is(err, os.ErrPermission), has("permission denied", "forbidden", "403", "access_denied", "insufficientpermissions"):
		return fmt.Errorf("permission denied: the account of the remote %q may not do this there: %w", cfg.Remote, err)
	case has("quota", "insufficient_space", "storage limit", "no space left", "cap_exceeded", "storagequotaexceeded"):
		return fmt.Errorf("no space left: the account of the remote %q is over its quota or storage is full: %w", cfg.Remote, err)
	case errors.As(err, &ne), fserrors.ShouldRetry(err), has("connection refused", "no such host", "connection reset", "i/o timeout", "eof"):
		return fmt.Errorf("network: the remote %q could not be reached or the connection was lost: %w", cfg.Remote, err)
	}
	return err
}
