package tree

import (
	"slices"
	"strings"
)

// Links keeps hard links restorable in tree order: a link met before its target (entries
// are sorted by name) carries the content, and the target becomes a link to it.
type Links struct {
	Emitted map[string]bool   // files with several links, emitted
	MovedTo map[string]string // target → the path that carries its content
	sel     []string          // the paths restored (nil: all)
}

// Before reports whether the file target was emitted before the entry p: it comes first in
// tree order and is restored (a tar stream's files carry no link count to mark them).
func (hl *Links) Before(target, p string) bool {
	if hl.Emitted[target] {
		return true
	}
	in, _ := Selected(hl.sel, target)
	return in && slices.Compare(strings.Split(target, "/"), strings.Split(p, "/")) < 0
}

// NewLinks is the hard links of a restore of the paths sel (nil: all).
func NewLinks(sel []string) *Links {
	return &Links{Emitted: map[string]bool{}, MovedTo: map[string]string{}, sel: sel}
}
