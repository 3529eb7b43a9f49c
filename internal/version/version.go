// Package version is the build's identity, set at link time by make (see the Makefile's
// LDFLAGS and tools/dist):
//
//	go build -ldflags "-X github.com/docker-backup/docker-backup/internal/version.Version=v1.2.3 \
//	  -X github.com/docker-backup/docker-backup/internal/version.Commit=0123abc…"
//
// Versions come from `git describe --tags` (tools/version.sh); an untagged build says
// v0.0.0-<commit date>-<commit>.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the linker. Nothing assigns them at run time.
var (
	// Version is the semver of this build; "dev" when not set by the linker.
	Version = "dev"
	// Commit is the full commit hash the build was made from, when known.
	Commit = ""
	// SidecarDigests pins the sidecar image of this release (make dist sets it): see Pins.
	SidecarDigests = ""
	// SidecarRepository is the registry repository make dist was told the release's sidecar
	// image is pushed to (IMAGE_REPO); empty: the image is looked for on the engine only.
	SidecarRepository = ""
)

// Info describes this build.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Get returns this build's Info.
func Get() Info {
	return Info{Version: Version, Commit: Commit, Go: runtime.Version(), Platform: platform(runtime.GOOS, runtime.GOARCH)}
}

// platform is "os/arch", with the ARM version for 32-bit ARM ("linux/arm/v7"), as image
// platforms are named.
func platform(goos, goarch string) string {
	if goarch != "arm" {
		return goos + "/" + goarch
	}
	v := "7"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				v, _, _ = strings.Cut(s.Value, ",")
			}
		}
	}
	return goos + "/arm/v" + v
}

// String is the one-line form: "v1.2.3 (commit 0123abcd4567, go1.26.8, linux/amd64)".
func (i Info) String() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	return fmt.Sprintf("%s (commit %s, %s, %s)", i.Version, commit, i.Go, i.Platform)
}

// Text is the multi-line form `version` commands print.
func (i Info) Text() string {
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("Version:   %s\nCommit:    %s\nGo:        %s\nPlatform:  %s\n", i.Version, commit, i.Go, i.Platform)
}
