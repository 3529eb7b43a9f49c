// Package version holds the build's version, set at link time:
//
//	go build -ldflags "-X github.com/docker-backup/docker-backup/internal/version.Version=v1.2.3"
package version

// Version of this build; "dev" when not set by the linker.
var Version = "dev"
