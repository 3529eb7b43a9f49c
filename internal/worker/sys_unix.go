//go:build !windows

package worker

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// unixRights is the control message that passes fd over a unix socket.
func unixRights(fd int) []byte { return unix.UnixRights(fd) }

// processGone reports whether no process has the ID pid.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
