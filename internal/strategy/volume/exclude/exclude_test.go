package exclude

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	type entry struct {
		rel string
		dir bool
	}
	file := func(rel string) entry { return entry{rel, false} }
	dir := func(rel string) entry { return entry{rel, true} }
	tests := []struct {
		name     string
		patterns []string
		excluded []entry
		kept     []entry
	}{
		{"a name at any depth", []string{"cache"},
			[]entry{dir("cache"), file("cache"), dir("a/cache"), file("a/b/cache")},
			[]entry{dir("caches"), file("a/cache.txt"), dir("mycache")}},
		{"star within a name", []string{"*.log"},
			[]entry{file("x.log"), file("a/b/y.log"), file(".log"), dir("d.log")},
			[]entry{file("x.log.1"), file("log"), file("a.logs/x")}},
		{"star does not cross a slash", []string{"a/*.log"},
			[]entry{file("a/x.log")},
			[]entry{file("a/b/x.log"), file("b/a/x.log"), file("x.log")}},
		{"question mark", []string{"file?.txt"},
			[]entry{file("file1.txt"), file("d/fileA.txt")},
			[]entry{file("file.txt"), file("file10.txt"), file("file/.txt")}},
		{"class", []string{"[abc].bin"},
			[]entry{file("a.bin"), file("x/c.bin")},
			[]entry{file("d.bin"), file("ab.bin")}},
		{"range", []string{"v[0-9]"},
			[]entry{file("v0"), dir("v7")},
			[]entry{file("va"), file("v10")}},
		{"negated class with !", []string{"[!a]*.tmp"},
			[]entry{file("b.tmp"), file("zz.tmp")},
			[]entry{file("a.tmp"), file("abc.tmp")}},
		{"negated class with ^", []string{"[^a]*.tmp"},
			[]entry{file("b.tmp")},
			[]entry{file("a.tmp")}},
		{"an escaped ] in a class", []string{`[\]x]`},
			[]entry{file("]"), file("x")},
			[]entry{file("y")}},
		{"escaped star", []string{`a\*`},
			[]entry{file("a*")},
			[]entry{file("ab")}},
		{"escaped leading !", []string{`\!important`},
			[]entry{file("!important")},
			[]entry{file("important")}},
		{"escaped leading #", []string{`\#notes`},
			[]entry{file("#notes")},
			[]entry{file("notes")}},
		{"leading slash anchors", []string{"/tmp"},
			[]entry{dir("tmp"), file("tmp")},
			[]entry{dir("a/tmp"), file("a/b/tmp")}},
		{"a middle slash anchors", []string{"logs/old"},
			[]entry{dir("logs/old")},
			[]entry{dir("a/logs/old"), dir("logs")}},
		{"trailing slash: directories only", []string{"build/"},
			[]entry{dir("build"), dir("a/build")},
			[]entry{file("build"), file("a/build")}},
		{"anchored and directories only", []string{"/build/"},
			[]entry{dir("build")},
			[]entry{file("build"), dir("x/build")}},
		{"leading **/", []string{"**/node_modules"},
			[]entry{dir("node_modules"), dir("a/b/node_modules")},
			[]entry{dir("node_modules_x")}},
		{"leading **/ with a path", []string{"**/cache/tmp"},
			[]entry{dir("cache/tmp"), dir("a/cache/tmp")},
			[]entry{dir("cache/x/tmp"), dir("tmp")}},
		{"trailing /** is what the directory holds", []string{"cache/**"},
			[]entry{file("cache/x"), dir("cache/a"), file("cache/a/b")},
			[]entry{dir("cache"), dir("x/cache"), file("x/cache/y")}},
		{"middle /**/: zero or more directories", []string{"a/**/b"},
			[]entry{dir("a/b"), dir("a/x/b"), file("a/x/y/b")},
			[]entry{dir("b"), dir("x/a/b"), dir("a/bb")}},
		{"** alone: everything below the root", []string{"**"},
			[]entry{file("x"), dir("a"), file("a/b/c")},
			[]entry{dir(""), dir(".")}},
		{"** inside a name is a *", []string{"a**z"},
			[]entry{file("az"), file("abcz"), file("d/abz")},
			[]entry{file("a/z")}},
		{"star matches hidden names", []string{"*"},
			[]entry{file(".env"), dir("x")},
			nil},
		{"the last pattern that matches decides", []string{"*.log", "!keep.log"},
			[]entry{file("a.log"), file("d/b.log")},
			[]entry{file("keep.log"), file("d/keep.log")}},
		{"excluded again after a negation", []string{"*.log", "!keep.log", "/keep.log"},
			[]entry{file("keep.log")},
			[]entry{file("d/keep.log")}},
		{"surrounding spaces are trimmed", []string{"  *.tmp  "},
			[]entry{file("a.tmp")},
			nil},
		{"no patterns", nil,
			nil,
			[]entry{file("x"), dir("y")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.excluded {
				if !s.Match(e.rel, e.dir) {
					t.Errorf("%q (dir %v) is not excluded by %q", e.rel, e.dir, tt.patterns)
				}
			}
			for _, e := range tt.kept {
				if s.Match(e.rel, e.dir) {
					t.Errorf("%q (dir %v) is excluded by %q", e.rel, e.dir, tt.patterns)
				}
			}
		})
	}
}

// TestExcluded: what is below an excluded directory is excluded, whatever else matches it,
// as a walk that does not enter the directory leaves it out (git's rule too).
func TestExcluded(t *testing.T) {
	s, err := Compile([]string{"cache/", "!cache/keep", "*.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rel  string
		dir  bool
		want bool
	}{
		{"cache", true, true},
		{"cache/keep", false, true}, // below an excluded directory: not read
		{"cache/a/b", false, true},
		{"/cache/a/", true, true},
		{"a/cache/x", false, true},
		{"x.tmp", false, true},
		{"x.tmp/y", false, true}, // a directory named x.tmp
		{"cachex/y", false, false},
		{"data/y", false, false},
		{"", true, false},
	} {
		if got := s.Excluded(tt.rel, tt.dir); got != tt.want {
			t.Errorf("Excluded(%q, %v) = %v, want %v", tt.rel, tt.dir, got, tt.want)
		}
	}
	var none *Set
	if none.Excluded("x", false) || !none.Empty() || none.Patterns() != nil {
		t.Error("a nil Set excludes something")
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tt := range []struct{ pattern, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"/", "matches no name"},
		{"!", "matches no name"},
		{"!/", "matches no name"},
		{"a//b", "empty part"},
		{"../x", `".." part`},
		{"a/./b", `"." part`},
		{"[a-", "[ without its ]"},
		{"[]x]", "[ without its ]"},
		{`x\`, `\ at the end`},
		{"#comment", "comment"},
		{"a\nb", "line break"},
	} {
		_, err := Compile([]string{"ok", tt.pattern})
		if err == nil {
			t.Errorf("%q accepted", tt.pattern)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.why) || !strings.Contains(msg, `exclude pattern "`) || !strings.Contains(msg, "a trailing / matches directories only") {
			t.Errorf("%q: %v (want the pattern, %q and what is allowed)", tt.pattern, err, tt.why)
		}
	}
}

func TestPatterns(t *testing.T) {
	s, err := Compile([]string{" *.log ", "cache/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Patterns(), "|"); got != "*.log|cache/" || s.Empty() {
		t.Errorf("Patterns = %q", got)
	}
}

func FuzzMatch(f *testing.F) {
	for _, seed := range []string{"*.log", "a/**/b", "[!a]x", "/x/", "!y", `\#z`} {
		f.Add(seed, "a/b/c.log", true)
	}
	f.Fuzz(func(t *testing.T, pattern, rel string, dir bool) {
		s, err := Compile([]string{pattern})
		if err != nil {
			return
		}
		_ = s.Excluded(rel, dir) // never panics
	})
}
