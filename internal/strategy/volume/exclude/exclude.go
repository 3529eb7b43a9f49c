// Package exclude matches the entries of a backed-up path against gitignore-style patterns:
// what a volume backup leaves out (--exclude, the label docker-backup.exclude).
//
// It is a small matcher of its own rather than a library: github.com/sabhiram/go-gitignore
// (unmaintained since 2021) turns patterns into regular expressions whose "**" and
// directory-only rules differ from git's, and go-git's plumbing/format/gitignore brings
// go-git's module graph into the worker's binary for some fifty lines of matching. Each
// pattern here is split at its slashes and each part matched with path.Match, the rest being
// git's rules (gitignore(5)), which the table tests spell out.
package exclude

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Syntax says what a pattern may hold, for errors.
const Syntax = "gitignore-style patterns relative to each backed-up path: * and ? match within a name, " +
	"[abc], [a-z] and [!a-z] match one character (\\] for a ] in a class), ** matches any number of directories, " +
	"a leading / anchors the pattern to the backed-up path, a trailing / matches directories only, " +
	"a leading ! includes again what an earlier pattern excluded (not below an excluded directory, which is not read), " +
	`\ escapes the next character`

// Set is a list of compiled patterns; the zero value and nil exclude nothing.
type Set struct {
	patterns []pattern
	source   []string
}

// pattern is one compiled pattern.
type pattern struct {
	parts   []string // path.Match patterns of one name each, or "**"
	negate  bool     // a leading "!": what it matches is included again
	dirOnly bool     // a trailing "/": it matches directories only
}

// Compile checks and compiles patterns, in order: the last pattern that matches an entry
// decides (as in a .gitignore file). An error names the first bad pattern and what is allowed.
func Compile(patterns []string) (*Set, error) {
	s := &Set{}
	for _, raw := range patterns {
		p, err := compile(raw)
		if err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w (%s)", raw, err, Syntax)
		}
		s.patterns = append(s.patterns, p)
		s.source = append(s.source, strings.TrimSpace(raw))
	}
	return s, nil
}

// Check reports what is wrong with the patterns, as Compile does.
func Check(patterns []string) error {
	_, err := Compile(patterns)
	return err
}

func compile(raw string) (pattern, error) {
	var p pattern
	s := strings.TrimSpace(raw)
	switch {
	case s == "":
		return p, errors.New("it is empty")
	case strings.ContainsAny(s, "\n\r\x00"):
		return p, errors.New("it holds a line break or a NUL")
	case strings.HasPrefix(s, "#"):
		return p, errors.New(`a leading # starts a comment in a .gitignore file: write \# for a name that begins with #`)
	}
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		p.negate, s = true, rest
	}
	if rest, ok := strings.CutSuffix(s, "/"); ok && !strings.HasSuffix(s, `\/`) {
		p.dirOnly, s = true, rest
	}
	anchored := false
	if rest, ok := strings.CutPrefix(s, "/"); ok {
		anchored, s = true, rest
	}
	if s == "" {
		return p, errors.New("it matches no name")
	}
	// A slash in the middle anchors the pattern too.
	anchored = anchored || strings.Contains(s, "/")
	if !anchored {
		p.parts = append(p.parts, "**")
	}
	for _, part := range strings.Split(s, "/") {
		switch part {
		case "":
			return p, errors.New("it has an empty part (//)")
		case ".", "..":
			return p, fmt.Errorf("it has a %q part: patterns are relative to the backed-up path, below it", part)
		case "**":
			if len(p.parts) > 0 && p.parts[len(p.parts)-1] == "**" {
				continue
			}
		default:
			part = bangClass(part)
			if _, err := path.Match(part, ""); err != nil {
				return p, errors.New("a [ without its ], or a \\ at the end")
			}
		}
		p.parts = append(p.parts, part)
	}
	return p, nil
}

// bangClass turns a class's "[!" (fnmatch's negation, which gitignore uses) into path.Match's
// "[^".
func bangClass(s string) string {
	if !strings.Contains(s, "[!") {
		return s
	}
	b := []byte(s)
	inClass := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++
		case !inClass && b[i] == '[':
			inClass = true
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
			}
			if i+1 < len(b) && b[i+1] == '^' {
				i++
			}
		case inClass && b[i] == ']':
			inClass = false
		}
	}
	return string(b)
}

// Empty reports whether s excludes nothing.
func (s *Set) Empty() bool { return s == nil || len(s.patterns) == 0 }

// Patterns are the patterns s was compiled from, trimmed.
func (s *Set) Patterns() []string {
	if s == nil {
		return nil
	}
	return s.source
}

// Match reports whether the entry rel (relative to the backed-up path, slash-separated, no
// leading slash; a directory when dir) is excluded by the patterns themselves: the last
// pattern that matches it decides. The entries below an excluded directory are excluded too,
// whatever Match says of them: see Excluded.
func (s *Set) Match(rel string, dir bool) bool {
	if s.Empty() || rel == "" || rel == "." {
		return false
	}
	names := strings.Split(rel, "/")
	excluded := false
	for _, p := range s.patterns {
		if p.dirOnly && !dir {
			continue
		}
		if matchParts(p.parts, names) {
			excluded = !p.negate
		}
	}
	return excluded
}

// Excluded reports whether the entry rel is left out: it, or a directory it is in, matches.
// A walk that does not descend into excluded directories needs only Match.
func (s *Set) Excluded(rel string, dir bool) bool {
	if s.Empty() {
		return false
	}
	rel = strings.Trim(rel, "/")
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && s.Match(rel[:i], true) {
			return true
		}
	}
	return s.Match(rel, dir)
}

// matchParts matches names against parts, where "**" is any number of names (at the end:
// one or more, so that "dir/**" is what dir holds, not dir).
func matchParts(parts, names []string) bool {
	for len(parts) > 0 {
		if parts[0] == "**" {
			rest := parts[1:]
			if len(rest) == 0 {
				return len(names) > 0
			}
			for i := 0; i <= len(names); i++ {
				if matchParts(rest, names[i:]) {
					return true
				}
			}
			return false
		}
		if len(names) == 0 {
			return false
		}
		if ok, _ := path.Match(parts[0], names[0]); !ok {
			return false
		}
		parts, names = parts[1:], names[1:]
	}
	return len(names) == 0
}
