package worker

import (
	"fmt"
	"strings"
)

// EnvMode chooses the volume data path, for the plugin and the sidecar alike.
const EnvMode = "DOCKER_BACKUP_WORKER"

// Mode is how volume backups and restores use a worker container.
type Mode string

// The modes.
const (
	ModeAuto Mode = "auto" // backups in place on the engine's host (the plugin), else a worker when one can run, else the Engine's archive API (default)
	ModeOn   Mode = "on"   // a worker container, or fail
	ModeOff  Mode = "off"  // the archive API
)

// ParseMode reads EnvMode's value; empty is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeOn, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("%s=%q: use auto (backups read in place on the engine's host when the plugin can, else a worker container when one can run, else the archive API), on (always a worker container) or off (always the archive API)", EnvMode, s)
}
