package watchdog

import (
	"os/exec"
	"syscall"
)

// detach runs cmd in a process group of its own: the console's Ctrl-C does not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
