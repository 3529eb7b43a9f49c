// Package tarpolicy says which entries of a volume archive may be restored, and how: below the
// backed-up paths, in the order the archive was written, nothing through a link, and from an
// unsigned backup no set-user-ID files, devices or privileged extended attributes. The volume
// strategy and the worker apply the same Policy.
package tarpolicy

import (
	"archive/tar"
	"fmt"
	"hash/maphash"
	"path"
	"slices"
	"strings"

	"github.com/docker-backup/docker-backup/internal/mountpath"
)

// Policy checks the entries of a volume archive, in one pass with memory that does not
// grow with the archive (except one hash per regular file, for hard links):
//
//   - every entry is below one of the backed-up paths, and a path's entries come together;
//   - entries come in the order the Engine's archive writes them (each directory before what
//     it holds, names in increasing order, none twice), and each entry's directory is a
//     directory entry of the archive: so the Engine creates every directory that a file is
//     written into, replacing any symbolic link that was there — nothing is written through
//     a link, wherever it points;
//   - a hard link points at an earlier regular file of the same path;
//   - without an authenticated manifest: no set-user-ID or set-group-ID files, no devices
//     (refused), and no extended attribute that grants or labels privileges — security.*
//     (file capabilities: cap_setuid is set-user-ID root by another name; security modules'
//     labels) and trusted.* — which Check removes from the header, so that no restore path
//     applies it: the file is restored without it (Dropped says what went).
type Policy struct {
	paths   []string
	trusted bool
	dropped int      // privileged extended attributes removed
	first   string   // the first of them: "security.capability of data/ping"
	root    string   // the archive prefix of the current path ("var/lib/data")
	done    []string // paths already finished
	prev    []string // the previous entry's name, in components
	stack   []string // directory entries enclosing the current one
	files   map[uint64]struct{}
	seed    maphash.Seed
}

// New returns the policy for an archive of paths; trusted: its manifest is signed with this
// tool's key.
func New(paths []string, trusted bool) *Policy {
	return &Policy{paths: paths, trusted: trusted, files: map[uint64]struct{}{}, seed: maphash.MakeSeed()}
}

// Check returns the backed-up path an entry belongs to, or why it must not be restored.
func (t *Policy) Check(hdr *tar.Header) (string, error) {
	name := strings.TrimSuffix(hdr.Name, "/")
	if !IsLocalName(name) {
		return "", fmt.Errorf("the archive entry %q is not a relative path inside the backed-up paths", hdr.Name)
	}
	p, ok := owner(name, t.paths)
	if !ok {
		return "", fmt.Errorf("the archive entry %q is outside the backed-up paths %s", hdr.Name, strings.Join(t.paths, ", "))
	}
	root := strings.TrimPrefix(p, "/")
	if root != t.root {
		if slices.Contains(t.done, root) {
			return "", fmt.Errorf("the archive entry %q comes after the entries of another path: not an archive this tool wrote", hdr.Name)
		}
		if t.root != "" {
			t.done = append(t.done, t.root)
		}
		t.root, t.prev, t.stack = root, nil, t.stack[:0]
		if name != root {
			return "", fmt.Errorf("the archive of %s does not start with %s itself but with %q", p, p, hdr.Name)
		}
	}
	parts := strings.Split(name, "/")
	if t.prev != nil && slices.Compare(parts, t.prev) <= 0 {
		return "", fmt.Errorf("the archive entry %q comes after %q: entries out of order or repeated, not an archive this tool wrote", hdr.Name, strings.Join(t.prev, "/"))
	}
	t.prev = parts
	if name != root {
		parent := path.Dir(name)
		for len(t.stack) > 0 && t.stack[len(t.stack)-1] != parent {
			t.stack = t.stack[:len(t.stack)-1]
		}
		if len(t.stack) == 0 {
			return "", fmt.Errorf("the archive entry %q is in %q, which is not a directory of the archive (nothing is written through a link)", hdr.Name, parent)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		t.stack = append(t.stack, name)
	case tar.TypeReg, tar.TypeGNUSparse, '\x00':
		t.files[maphash.String(t.seed, name)] = struct{}{}
	case tar.TypeSymlink:
		t.files[maphash.String(t.seed, name)] = struct{}{} // a hard link may point at a link
	case tar.TypeFifo:
	case tar.TypeLink:
		target := strings.TrimSuffix(hdr.Linkname, "/")
		if _, ok := t.files[maphash.String(t.seed, target)]; !ok || !IsLocalName(target) || !mountpath.Inside("/"+target, "/"+root) {
			return "", fmt.Errorf("hard link %q points at %q, which is not an earlier file of %s", hdr.Name, hdr.Linkname, p)
		}
		t.files[maphash.String(t.seed, name)] = struct{}{}
	case tar.TypeChar, tar.TypeBlock:
		if !t.trusted {
			return "", fmt.Errorf("the archive entry %q is a device node: refused from a backup whose manifest is not signed with this tool's key", hdr.Name)
		}
	default:
		return "", fmt.Errorf("the archive entry %q has type %q, which a volume backup never holds", hdr.Name, hdr.Typeflag)
	}
	if hdr.Mode&(ModeSetUID|ModeSetGID) != 0 && hdr.Typeflag != tar.TypeDir && !t.trusted {
		return "", fmt.Errorf("the archive entry %q is set-user-ID or set-group-ID (mode %o): refused from a backup whose manifest is not signed with this tool's key", hdr.Name, hdr.Mode)
	}
	if !t.trusted {
		t.dropPrivileged(hdr, name)
	}
	return p, nil
}

// xattrRecord begins the PAX record of an extended attribute.
const xattrRecord = "SCHILY.xattr."

// CapabilityXattr is the extended attribute of a file's capabilities, which a volume archive
// keeps (restored only from a signed backup).
const CapabilityXattr = "security.capability"

// PrivilegedXattr reports whether the extended attribute name grants or labels privileges:
// security.* (file capabilities, security modules' labels) or trusted.*. Only a backup whose
// manifest is signed with this tool's key restores them.
func PrivilegedXattr(name string) bool {
	return strings.HasPrefix(name, "security.") || strings.HasPrefix(name, "trusted.")
}

// dropPrivileged removes the privileged extended attributes from hdr (from both of the forms
// archive/tar reads them into and writes them from), counting them.
func (t *Policy) dropPrivileged(hdr *tar.Header, name string) {
	var dropped []string
	for k := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(k, xattrRecord); ok && PrivilegedXattr(attr) {
			delete(hdr.PAXRecords, k)
			dropped = append(dropped, attr)
		}
	}
	//lint:ignore SA1019 archive/tar still reads extended attributes into Xattrs and writes them from it
	xattrs := hdr.Xattrs
	for attr := range xattrs {
		if PrivilegedXattr(attr) {
			delete(xattrs, attr)
			if !slices.Contains(dropped, attr) {
				dropped = append(dropped, attr)
			}
		}
	}
	if len(dropped) == 0 {
		return
	}
	if t.dropped == 0 {
		slices.Sort(dropped)
		t.first = dropped[0] + " of " + name
	}
	t.dropped += len(dropped)
}

// Dropped says which privileged extended attributes Check removed (empty: none), for a
// warning: the files were restored without them.
func (t *Policy) Dropped() string {
	if t.dropped == 0 {
		return ""
	}
	more := ""
	if t.dropped > 1 {
		more = fmt.Sprintf(" and %d more", t.dropped-1)
	}
	return fmt.Sprintf("restored without the extended attributes that grant privileges (%s%s): the backup's manifest is not signed with this tool's key, and file capabilities and security labels are restored only from signed backups", t.first, more)
}

// owner finds the backed-up path that holds an archive entry.
func owner(name string, paths []string) (string, bool) {
	for _, p := range paths {
		pre := strings.TrimPrefix(p, "/")
		if name == pre || strings.HasPrefix(name, pre+"/") {
			return p, true
		}
	}
	return "", false
}

// IsLocalName reports whether name is a relative path that stays where it is put: not empty,
// not absolute, no "." or ".." or empty component.
func IsLocalName(name string) bool {
	name = strings.TrimSuffix(name, "/")
	if name == "" || strings.HasPrefix(name, "/") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}

// Mode bits of tar headers.
const (
	ModeSetUID = 0o4000
	ModeSetGID = 0o2000
)
