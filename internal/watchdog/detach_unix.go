//go:build !windows

package watchdog

import (
	"os/exec"
	"syscall"
)

// detach runs cmd in a session of its own: the terminal's Ctrl-C does not reach it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
