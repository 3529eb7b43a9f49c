package tarpolicy

import (
	"archive/tar"
	"slices"
	"strings"
	"testing"
)

func TestIsLocalName(t *testing.T) {
	for name, want := range map[string]bool{"data/x": true, "data/": true, "../x": false, "/abs": false, "a/../b": false, "a//b": false, "": false} {
		if got := IsLocalName(name); got != want {
			t.Errorf("IsLocalName(%q) = %v", name, got)
		}
	}
}

// The archive policy of volume restores, entry by entry.
func TestPolicy(t *testing.T) {
	dir := func(name string) *tar.Header {
		return &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755}
	}
	file := func(name string, mode int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}
	}
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: to}
	}
	symlink := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	paths := []string{"/srv/uploads", "/srv/uploads2"}
	cases := []struct {
		name    string
		trusted bool
		entries []*tar.Header
		want    string // "" accepted, else a part of the error
	}{
		{"a real archive", false, []*tar.Header{dir("srv/uploads"), dir("srv/uploads/a"), file("srv/uploads/a/x", 0o640),
			link("srv/uploads/a/y", "srv/uploads/a/x"), symlink("srv/uploads/l", "/etc/passwd"), file("srv/uploads/z", 0o644),
			dir("srv/uploads2"), file("srv/uploads2/x", 0o600)}, ""},
		{"through a symlink", false, []*tar.Header{dir("srv/uploads"), symlink("srv/uploads/l", "/usr/local/bin"), file("srv/uploads/l/evil", 0o755)},
			"not a directory of the archive"},
		{"into a directory the archive did not make", false, []*tar.Header{dir("srv/uploads"), file("srv/uploads/pre-existing/x", 0o644)},
			"not a directory of the archive"},
		{"a hard link to another path with the same prefix", false, []*tar.Header{dir("srv/uploads2"), file("srv/uploads2/x", 0o644),
			dir("srv/uploads"), link("srv/uploads/y", "srv/uploads2/x")}, "not an earlier file of /srv/uploads"},
		{"a hard link out of its path", false, []*tar.Header{dir("srv/uploads"), link("srv/uploads/y", "etc/shadow")}, "not an earlier file"},
		{"a hard link to a later file", false, []*tar.Header{dir("srv/uploads"), link("srv/uploads/a", "srv/uploads/b"), file("srv/uploads/b", 0o644)},
			"not an earlier file"},
		{"set-user-ID unsigned", false, []*tar.Header{dir("srv/uploads"), file("srv/uploads/s", 0o4755)}, "set-user-ID"},
		{"set-user-ID signed", true, []*tar.Header{dir("srv/uploads"), file("srv/uploads/s", 0o4755)}, ""},
		{"a device unsigned", false, []*tar.Header{dir("srv/uploads"), {Name: "srv/uploads/sda", Typeflag: tar.TypeBlock}}, "device node"},
		{"outside the paths", false, []*tar.Header{dir("etc"), file("etc/passwd", 0o644)}, "outside the backed-up paths"},
		{"not starting with its path", false, []*tar.Header{file("srv/uploads/x", 0o644)}, "does not start with /srv/uploads itself"},
		{"repeated", false, []*tar.Header{dir("srv/uploads"), file("srv/uploads/x", 0o644), file("srv/uploads/x", 0o644)}, "out of order or repeated"},
		{"dot-dot", false, []*tar.Header{dir("srv/uploads"), file("srv/uploads/../../etc/passwd", 0o644)}, "not a relative path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol := New(paths, tc.trusted)
			var err error
			for _, h := range tc.entries {
				if _, err = pol.Check(h); err != nil {
					break
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestPolicyDropsPrivilegedXattrs: from a backup that is not trusted, Check removes every
// security.* and trusted.* extended attribute (both forms archive/tar keeps them in) and says
// so; other attributes stay; a trusted backup keeps them all.
func TestPolicyDropsPrivilegedXattrs(t *testing.T) {
	capability := "\x01\x00\x00\x02\x80\x00\x00\x00" // cap_setuid (bit 7), permitted and effective
	entry := func() *tar.Header {
		return &tar.Header{Name: "data/ping", Typeflag: tar.TypeReg, Mode: 0o755, PAXRecords: map[string]string{
			"SCHILY.xattr.security.capability": capability, "SCHILY.xattr.security.selinux": "system_u:object_r:bin_t:s0",
			"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.note": "kept", "mtime": "1"}}
	}
	for _, trusted := range []bool{false, true} {
		pol := New([]string{"/data"}, trusted)
		if _, err := pol.Check(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		hdr := entry()
		//lint:ignore SA1019 the form archive/tar's reader still fills
		hdr.Xattrs = map[string]string{"security.capability": capability, "trusted.x": "1", "user.note": "kept"}
		if _, err := pol.Check(hdr); err != nil {
			t.Fatalf("trusted %v: %v", trusted, err)
		}
		var left []string
		for k := range hdr.PAXRecords {
			left = append(left, k)
		}
		//lint:ignore SA1019 the form archive/tar's reader still fills
		for k := range hdr.Xattrs {
			left = append(left, "Xattrs:"+k)
		}
		slices.Sort(left)
		got := strings.Join(left, " ")
		if trusted {
			if len(left) != 8 || pol.Dropped() != "" {
				t.Errorf("trusted: attributes %s, dropped %q; want all kept", got, pol.Dropped())
			}
			continue
		}
		if got != "SCHILY.xattr.user.note Xattrs:user.note mtime" {
			t.Errorf("untrusted: attributes left %s, want only user.note and mtime", got)
		}
		if d := pol.Dropped(); !strings.Contains(d, "security.capability of data/ping and 3 more") || !strings.Contains(d, "not signed") {
			t.Errorf("untrusted: Dropped() = %q", d)
		}
	}
}
