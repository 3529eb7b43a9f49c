// Package image assembles the sidecar image without a registry, a Dockerfile or buildx: one
// static binary and two directories FROM scratch, for each platform, written as `docker
// load` archives and as one multi-platform OCI image layout. Same inputs, same bytes.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the image's default user: not root. Its state and backup directories belong to
// it; the Docker socket needs its group added (group_add).
const User = "65532:65532"

// Program is the binary's path in the image.
const Program = "/sidecar"

// StateDir and BackupsDir are the image's directories: the catalog and control socket (a
// volume), and the default local target.
const (
	StateDir   = "/var/lib/docker-backup"
	BackupsDir = "/backups"
)

// Meta is what the image says about itself (its OCI labels).
type Meta struct {
	Version  string    // org.opencontainers.image.version
	Revision string    // the commit
	Source   string    // the repository's URL
	Licenses string    // an SPDX expression
	Created  time.Time // the commit's time (SOURCE_DATE_EPOCH)
}

// Labels are the image's labels: the OCI annotations and the one the plugin finds sidecars by.
func (m Meta) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "docker-backup sidecar",
		"org.opencontainers.image.description": "Scheduled backups, retention, a catalog and metrics for the services of a Docker Compose project",
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.url":         m.Source,
		"org.opencontainers.image.licenses":    m.Licenses,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
		"docker-backup.sidecar":                "true",
	}
}

// Platform parses "linux/arm/v7" into an image platform.
func Platform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", s)
	}
	return *p, nil
}

// Sidecar returns the image of the sidecar binary (a static Linux executable for platform).
func Sidecar(binary string, platform v1.Platform, m Meta) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the sidecar binary: %w", err)
	}
	layerTar, err := rootfs(bin, m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making the image's layer: %w", err)
	}
	created := v1.Time{Time: m.Created.UTC()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   created,
		CreatedBy: "make dist: " + Program + ", " + StateDir + " and " + BackupsDir + " (owned by " + User + ")",
	}})
	if err != nil {
		return nil, fmt.Errorf("adding the image's layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created, cf.OS, cf.Architecture, cf.Variant = created, platform.OS, platform.Architecture, platform.Variant
	cf.Author = m.Source
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{Program},
		ExposedPorts: map[string]struct{}{"9090/tcp": {}},
		Volumes:      map[string]struct{}{StateDir: {}},
		Labels:       m.Labels(),
		Healthcheck: &v1.HealthConfig{
			Test:     []string{"CMD", Program, "healthcheck"},
			Interval: 30 * time.Second, Timeout: 5 * time.Second, StartPeriod: 20 * time.Second,
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("writing the image's configuration: %w", err)
	}
	return img, nil
}

// rootfs is the layer: the binary (root's, 0755) and the directories its user owns.
func rootfs(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	uid := 65532
	entries := []tar.Header{
		{Name: "backups/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: uid},
		{Name: strings.TrimPrefix(Program, "/"), Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))},
		{Name: "var/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "var/lib/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "var/lib/docker-backup/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: uid},
	}
	for _, h := range entries {
		h.ModTime = mtime.UTC()
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("writing the image's layer: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bin); err != nil {
				return nil, fmt.Errorf("writing the image's layer: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the image's layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Digests are the digests an engine or a registry knows an image by: its configuration's
// (the image ID of Docker's classic store) and its manifest's.
func Digests(img v1.Image) (config, manifest string, err error) {
	c, err := img.ConfigName()
	if err != nil {
		return "", "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	return c.String(), d.String(), nil
}
