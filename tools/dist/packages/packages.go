// Package packages builds the plugin's .deb and .rpm with nfpm: one file, installed where
// Docker's own plugin packages (docker-compose-plugin, docker-buildx-plugin) put theirs.
package packages

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// PluginPath is where the packages install the plugin.
const PluginPath = "/usr/libexec/docker/cli-plugins/docker-backup"

// Meta describes the package.
type Meta struct {
	Version    string // v1.2.3 (the v is dropped)
	Homepage   string
	License    string
	Maintainer string
	MTime      time.Time // every file's time and the build time (SOURCE_DATE_EPOCH)
}

// FileName is the package's file name: docker-backup_1.2.3_amd64.deb (or .rpm).
func FileName(version, goarch, format string) string {
	return fmt.Sprintf("docker-backup_%s_%s.%s", strings.TrimPrefix(version, "v"), goarch, format)
}

// Build writes the package of format ("deb" or "rpm") holding binary, the plugin for
// goarch ("amd64", "arm64"), to file.
func Build(file, format, binary, goarch string, m Meta) error {
	var p nfpm.Packager
	switch format {
	case "deb":
		p = deb.Default
	case "rpm":
		p = rpm.DefaultRPM
	default:
		return fmt.Errorf("package format %q: use deb or rpm", format)
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        "docker-backup",
		Arch:        goarch,
		Platform:    "linux",
		Version:     strings.TrimPrefix(m.Version, "v"),
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  m.Maintainer,
		Vendor:      "docker-backup",
		Homepage:    m.Homepage,
		License:     m.License,
		Description: "Docker CLI plugin: back up and restore Docker Compose projects\nDatabases are dumped with their own tools inside their containers, volumes are archived beside\nthe data; every backup is a checksummed, signed artifact on a directory or S3.\nRun `docker backup --help`.",
		MTime:       m.MTime.UTC(),
		Overridables: nfpm.Overridables{
			Contents: files.Contents{{
				Source: binary, Destination: PluginPath,
				FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: m.MTime.UTC(), Owner: "root", Group: "root"},
			}},
			Deb: nfpm.Deb{Fields: map[string]string{"Enhances": "docker-ce-cli, docker.io, docker-cli"}},
			RPM: nfpm.RPM{BuildHost: "docker-backup", Summary: "Docker CLI plugin: back up and restore Docker Compose projects", Group: "Applications/System"},
		},
	})
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return fmt.Errorf("preparing the %s package: %w", format, err)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Close()
}
