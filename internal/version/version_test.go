package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestInfoString(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "0123456789abcdef0123", Go: "go1.26.8", Platform: "linux/arm/v7"}
	if got, want := i.String(), "v1.2.3 (commit 0123456789ab, go1.26.8, linux/arm/v7)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "dev", Go: "go1", Platform: "p"}).String(); !strings.Contains(got, "commit unknown") {
		t.Errorf("without a commit: %q", got)
	}
	g := Get()
	if g.Go != runtime.Version() || !strings.HasPrefix(g.Platform, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("Get() = %+v", g)
	}
}

func TestPins(t *testing.T) {
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	p, err := ParsePins("index@" + d("a") + ",linux/amd64@" + d("b") + ",linux/amd64@" + d("c") + ",linux/arm/v7@" + d("e"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		platform, digest string
		want             bool
	}{
		{"linux/amd64", d("b"), true}, {"linux/amd64", d("c"), true}, {"linux/amd64", d("a"), true},
		{"linux/amd64", d("e"), false}, {"linux/arm64", d("b"), false}, {"linux/amd64", "", false},
	} {
		if got := p.Known(c.platform, c.digest); got != c.want {
			t.Errorf("Known(%s, %s) = %v, want %v", c.platform, c.digest, got, c.want)
		}
	}
	if e, err := ParsePins(""); err != nil || !e.Empty() {
		t.Errorf("ParsePins(\"\") = %+v, %v; want empty", e, err)
	}
	for _, bad := range []string{"index", "index@md5:00", "linux/amd64@sha256:abc"} {
		if _, err := ParsePins(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParsePins(%q) = %v; want an error naming it", bad, err)
		}
	}
}
