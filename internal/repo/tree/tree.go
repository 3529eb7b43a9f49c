// Package tree encodes a snapshot's directories: one tree blob per directory, its entries
// sorted by name, as JSON. An unchanged directory encodes to the same bytes, hence the same
// blob ID, and is stored once.
package tree

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// Node types.
const (
	File     = "file"
	Dir      = "dir"
	Symlink  = "symlink"
	Hardlink = "hardlink" // LinkTarget is the path (in the snapshot) of the first link
	FIFO     = "fifo"
	CharDev  = "chardev"
	BlockDev = "blockdev"
)

// Node is one directory entry.
type Node struct {
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Mode       uint32            `json:"mode"` // permission and setuid/setgid/sticky bits (07777)
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Uname      string            `json:"uname,omitempty"`
	Gname      string            `json:"gname,omitempty"`
	Size       int64             `json:"size"`
	MTime      time.Time         `json:"mtime"`
	CTime      time.Time         `json:"ctime"`
	ATime      time.Time         `json:"atime,omitzero"`
	Inode      uint64            `json:"inode,omitempty"`
	Device     uint64            `json:"device,omitempty"` // of the file system holding it
	Rdev       uint64            `json:"rdev,omitempty"`   // of a device node
	NLink      uint64            `json:"nlink,omitempty"`
	Xattrs     map[string][]byte `json:"xattrs,omitempty"`
	LinkTarget string            `json:"link_target,omitempty"`
	Content    []blob.ID         `json:"content,omitempty"`
	// ContentHash is the xxHash64 of a file's content (as artifact.TreeDigest hashes it), so
	// that a snapshot's contents can be counted without reading unchanged files; 0: not recorded.
	ContentHash uint64   `json:"xxh64,omitempty"`
	Subtree     *blob.ID `json:"subtree,omitempty"`
}

// Tree is one directory's entries.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Validate checks that a node can be restored safely: a plain name and a known type.
func (n *Node) Validate() error {
	if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
		return fmt.Errorf("entry name %q is not a plain file name", n.Name)
	}
	switch n.Type {
	case File, Symlink, Hardlink, FIFO, CharDev, BlockDev:
	case Dir:
		if n.Subtree == nil {
			return fmt.Errorf("directory %q has no subtree", n.Name)
		}
	default:
		return fmt.Errorf("entry %q has type %q, not one of file, dir, symlink, hardlink, fifo, chardev, blockdev", n.Name, n.Type)
	}
	if n.Type == Hardlink && (n.LinkTarget == "" || path.IsAbs(n.LinkTarget) || slices.Contains(strings.Split(n.LinkTarget, "/"), "..")) {
		return fmt.Errorf("hard link %q points to %q, not a path inside the snapshot", n.Name, n.LinkTarget)
	}
	return nil
}

// Encode sorts the entries by name and encodes the tree; two entries of one name are refused.
func Encode(t *Tree) ([]byte, error) {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range t.Nodes {
		if i > 0 && t.Nodes[i].Name == t.Nodes[i-1].Name {
			return nil, fmt.Errorf("two entries named %q in one directory", t.Nodes[i].Name)
		}
		// Times in UTC, so that the same instant always encodes the same.
		n := &t.Nodes[i]
		n.MTime, n.CTime, n.ATime = n.MTime.UTC(), n.CTime.UTC(), n.ATime.UTC()
	}
	return json.Marshal(t)
}

// Decode reads a tree blob and validates its entries (sorted, unique, safe names).
func Decode(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decoding a tree: %w", err)
	}
	for i := range t.Nodes {
		if err := t.Nodes[i].Validate(); err != nil {
			return nil, err
		}
		if i > 0 && t.Nodes[i].Name <= t.Nodes[i-1].Name {
			return nil, fmt.Errorf("tree entries %q and %q are not sorted and unique", t.Nodes[i-1].Name, t.Nodes[i].Name)
		}
	}
	return &t, nil
}

// Find returns the entry called name.
func (t *Tree) Find(name string) (*Node, bool) {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n Node, name string) int { return strings.Compare(n.Name, name) })
	if !ok {
		return nil, false
	}
	return &t.Nodes[i], true
}
