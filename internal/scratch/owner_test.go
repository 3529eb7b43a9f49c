package scratch

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestStale(t *testing.T) {
	now := time.Now()
	future := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	past := strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)
	me := ProcessOwner()
	host, _ := os.Hostname()
	dead := "process:" + host + ":" + bootID() + ":" + pidNamespace() + ":999999999:1" // no such PID
	otherNamespace := "process:" + host + ":" + bootID() + ":1:999999999:1"            // a PID this namespace cannot see
	sidecar := SidecarOwner("abc")
	earlierLife := SidecarOwner("abc")
	for _, tc := range []struct {
		name, self, owner, expires string
		stale                      bool
	}{
		{"mine, running", me, me, future, false},
		{"expired", me, me, past, true},
		{"a dead process of this host", me, dead, future, true},
		{"a live process of this host", sidecar, me, future, false},
		{"another host's process", me, "process:elsewhere:x:1:1:1", future, false},
		{"a process in another PID namespace", me, otherNamespace, future, false},
		{"an older owner format", me, "process:" + host + ":" + bootID() + ":999999999:1", future, false},
		{"this sidecar now", sidecar, sidecar, future, false},
		{"this sidecar's earlier life", sidecar, earlierLife, future, true},
		{"another sidecar", sidecar, SidecarOwner("other"), future, false},
		{"no owner", me, "", future, false},
	} {
		got := Stale(tc.self, now)(map[string]string{LabelOwner: tc.owner, LabelExpires: tc.expires})
		if got != tc.stale {
			t.Errorf("%s: stale = %v, want %v", tc.name, got, tc.stale)
		}
	}
}
