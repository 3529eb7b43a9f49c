package version

import (
	"fmt"
	"strings"
)

// Pins are the digests of the sidecar image a release was built with: the multi-platform
// index (what a registry serves) and, per platform, the image's digests an engine may
// know it by (its configuration's digest, the image ID of Docker's classic image store, and
// its manifest's, the ID of the containerd image store).
type Pins struct {
	Index  string
	Images map[string][]string // "linux/amd64" → digests
}

// Known reports whether d is one of the digests of the image for platform, or the index's.
func (p Pins) Known(platform, d string) bool {
	if d == "" {
		return false
	}
	if d == p.Index {
		return true
	}
	for _, x := range p.Images[platform] {
		if x == d {
			return true
		}
	}
	return false
}

// Empty reports whether no digest is pinned (a build not made by make dist).
func (p Pins) Empty() bool { return p.Index == "" && len(p.Images) == 0 }

// ParsePins reads SidecarDigests' form, which make dist writes (tools/dist): comma-separated
// NAME@DIGEST, NAME being "index" or a platform ("linux/arm64"); a platform may appear more
// than once.
func ParsePins(s string) (Pins, error) {
	p := Pins{Images: map[string][]string{}}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		name, d, ok := strings.Cut(f, "@")
		if !ok || !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
			return Pins{}, fmt.Errorf("sidecar image pin %q: want NAME@sha256:<64 hex digits>", f)
		}
		if name == "index" {
			p.Index = d
		} else {
			p.Images[name] = append(p.Images[name], d)
		}
	}
	return p, nil
}

// SidecarPins returns the pins linked into this build (none unless made by make dist).
func SidecarPins() (Pins, error) { return ParsePins(SidecarDigests) }
