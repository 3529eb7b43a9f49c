package sidecar

import "testing"

// TestKeyPrefixOfComposeOnASwarmNode: a compose project's sidecar on an Engine that is in a
// swarm (a manager that also runs compose projects) keeps its host's prefix on a shared
// target, as before Swarm support: without it two hosts' projects of the same name share
// keys, and each one's retention prunes the other's backups. Only a stack's sidecar has none.
func TestKeyPrefixOfComposeOnASwarmNode(t *testing.T) {
	custom := "mine"
	for _, tc := range []struct {
		name            string
		configured      *string
		remote, inStack bool
		want            string
	}{
		{"compose, remote target", nil, true, false, "vm1"},
		{"compose on a swarm node, remote target", nil, true, false, "vm1"},
		{"stack sidecar, remote target", nil, true, true, ""},
		{"local directory", nil, false, false, ""},
		{"configured", &custom, true, true, "mine"},
	} {
		if got := keyPrefix(tc.configured, tc.remote, tc.inStack, "vm1"); got != tc.want {
			t.Errorf("%s: prefix %q, want %q", tc.name, got, tc.want)
		}
	}
}
