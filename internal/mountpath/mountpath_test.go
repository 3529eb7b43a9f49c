package mountpath

import "testing"

func TestInside(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{{"/srv/uploads", "/srv/uploads", true}, {"/srv/uploads/x", "/srv/uploads", true}, {"/srv/uploads2", "/srv/uploads", false},
		{"/srv", "/srv/uploads", false}, {"/x", "/", true}} {
		if got := Inside(c.p, c.dir); got != c.want {
			t.Errorf("Inside(%q, %q) = %v", c.p, c.dir, got)
		}
	}
}

func TestHolder(t *testing.T) {
	if d, ok := Holder("/srv/a/b", []string{"/x", "/srv/a", "/srv"}); !ok || d != "/srv/a" {
		t.Errorf("Holder = %q, %v", d, ok)
	}
	if _, ok := Holder("/srv2", []string{"/srv"}); ok {
		t.Error("Holder found a directory that does not hold the path")
	}
}

func TestIsStaging(t *testing.T) {
	mounts := []string{"/data"}
	for p, want := range map[string]bool{"/data/" + StagingPrefix + "0123456789ab": true, "/data/" + StagingPrefix + "0123456789aB": false,
		"/data/sub/" + StagingPrefix + "0123456789ab": false, "/data/" + StagingPrefix + "01234": false} {
		if got := IsStaging(p, mounts); got != want {
			t.Errorf("IsStaging(%q) = %v", p, got)
		}
	}
}
