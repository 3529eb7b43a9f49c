package volume

import (
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/strategy/volume/exclude"
)

// Red team: a user who excludes "/data/cache" from the volume mounted at /data means that
// directory; patterns are relative to each backed-up path, so it is /data/data/cache, which
// does not exist: nothing is left out, silently (the cache, or the secrets the user meant to
// keep out, are in every backup; `run` even prints "excluded /data/cache"). A pattern whose
// first part is the backed-up path's own absolute path is almost surely this mistake: it
// should be refused (or taken relative to /), saying patterns are relative to each path.
func TestRedTeamAbsoluteExcludeOfTheBackedUpPathIsSilentlyANoOp(t *testing.T) {
	v, err := New([]string{"/data"}, []string{"/data/cache"})
	if err != nil {
		return // refused: good
	}
	set, _ := exclude.Compile(v.exclude.Patterns())
	if !set.Excluded("cache", true) && !set.Excluded("cache/x", false) {
		t.Errorf("--exclude /data/cache with --paths /data is accepted and leaves out nothing of /data/cache")
	}
}

// The refusal says what the pattern means and what to write instead; a pattern that only
// looks alike (/database with the path /data, /data below the path /srv) is kept.
func TestAnchoredPatternsNamingTheBackedUpPath(t *testing.T) {
	_, err := New([]string{"/srv", "/data"}, []string{"/data/cache/"})
	if err == nil || !strings.Contains(err.Error(), `to leave out /data/cache write "/cache/"`) {
		t.Errorf("error %v", err)
	}
	if _, err := New([]string{"/data"}, []string{"/data"}); err == nil || !strings.Contains(err.Error(), "the backed-up path /data itself") {
		t.Errorf("error %v", err)
	}
	if _, err := New([]string{"/data", "/srv"}, []string{"/database", "/srvx/y", "data/cache"}); err != nil {
		t.Errorf("refused: %v", err)
	}
}
