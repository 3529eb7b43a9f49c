package rclone

// The backends this build knows, imported one by one (not backend/all, which brings every one of rclone's backends): the
// ones that can store a stream of unknown size without a temporary file on local disk (see
// docs/targets.md for the measured cost of each).
import (
	_ "github.com/rclone/rclone/backend/b2"
	_ "github.com/rclone/rclone/backend/drive"
	_ "github.com/rclone/rclone/backend/dropbox"
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/sftp"
)
