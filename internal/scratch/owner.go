package scratch

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcessOwner identifies this process on this host: "process:HOST:BOOT:PIDNS:PID:START",
// where BOOT and START (the boot's ID and the process's start time) tell a live process from
// a later one that reuses its PID, and PIDNS (the PID namespace) keeps a process in another
// namespace — a sidecar on the host's network shares the host name — from judging it.
func ProcessOwner() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("process:%s:%s:%s:%d:%s", host, bootID(), pidNamespace(), pid, startTime(pid))
}

// pidNamespace is the inode of this process's PID namespace ("" when it cannot be read).
func pidNamespace() string {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(link, "pid:["), "]")
}

// SidecarOwner identifies a sidecar's process: "sidecar:ID:NONCE", with its container's ID
// and a nonce of this process (a restarted sidecar is another owner).
func SidecarOwner(containerID string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "sidecar:" + containerID + ":" + hex.EncodeToString(b)
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	s := strings.TrimSpace(string(b))
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}

// startTime is the process's start time in clock ticks after boot (field 22 of
// /proc/PID/stat), "" when it cannot be read.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// Stale returns the rule Reap applies for a process whose own owner is self: a scratch is
// stale when it expired, when a previous life of the same sidecar made it, or when a process
// of this host, boot and PID namespace made it and is no longer running.
func Stale(self string, now time.Time) func(labels map[string]string) bool {
	host, _ := os.Hostname()
	return func(labels map[string]string) bool {
		if exp, err := strconv.ParseInt(labels[LabelExpires], 10, 64); err == nil && now.Unix() > exp {
			return true
		}
		owner := labels[LabelOwner]
		if owner == "" {
			return false
		}
		if owner == self {
			return false
		}
		if i := strings.LastIndexByte(self, ':'); strings.HasPrefix(self, "sidecar:") && strings.HasPrefix(owner, self[:i+1]) {
			return true
		}
		parts := strings.Split(owner, ":")
		ns := pidNamespace()
		if len(parts) != 6 || parts[0] != "process" || parts[1] != host || parts[2] != bootID() || ns == "" || parts[3] != ns {
			return false
		}
		pid, err := strconv.Atoi(parts[4])
		if err != nil {
			return false
		}
		st := startTime(pid)
		return st == "" || st != parts[5]
	}
}
