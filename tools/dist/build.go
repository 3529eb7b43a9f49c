package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/tools/dist/checksums"
	"github.com/docker-backup/docker-backup/tools/dist/image"
	"github.com/docker-backup/docker-backup/tools/dist/packages"
	"github.com/docker-backup/docker-backup/tools/dist/sbom"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The release's platforms.
var (
	pluginPlatforms  = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}
	sidecarPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}
	packageArchs     = []string{"amd64", "arm64"}
)

const versionPkg = "github.com/docker-backup/docker-backup/internal/version"

type buildConfig struct {
	release
	root, out, work, repo, maintainer string
}

func cmdBuild(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var c buildConfig
	c.flags(fs)
	fs.StringVar(&c.root, "root", ".", "the repository's root (the main module)")
	fs.StringVar(&c.out, "out", "dist", "the release directory to write (must not exist)")
	fs.StringVar(&c.work, "work", "bin/release", "a directory for what is built but not released")
	fs.StringVar(&c.repo, "repo", "", "the registry repository the sidecar image will be pushed to (IMAGE_REPO), linked into the plugin")
	fs.StringVar(&c.maintainer, "maintainer", "docker-backup maintainers", "the packages' maintainer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := os.Stat(c.out); err == nil {
		return fmt.Errorf("%s exists: remove it first (make dist does)", c.out)
	}
	for _, d := range []string{c.out, c.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	step := func(what string, f func() error) error {
		t := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Info(what, "took", time.Since(t).Round(100*time.Millisecond).String())
		return nil
	}
	var sidecars []sbom.Binary
	var pins string
	var index string
	steps := []struct {
		what string
		f    func() error
	}{
		{"sidecar binaries", func() (err error) { sidecars, err = c.buildSidecars(); return err }},
		{"sidecar images", func() (err error) { pins, index, err = c.images(sidecars); return err }},
		{"plugin binaries", func() error { return c.buildPlugins(pins) }},
		{"packages", c.packages},
		{"SBOMs", func() error { return c.sboms(sidecars, index) }},
		{"install.sh", func() error {
			return copyFile(filepath.Join(c.root, "install.sh"), filepath.Join(c.out, "install.sh"), 0o755)
		}},
		{"checksums", func() error { return checksums.Write(c.out) }},
	}
	for _, s := range steps {
		if err := step(s.what, s.f); err != nil {
			return err
		}
	}
	log.Info("release written", "dir", c.out, "version", c.version, "took", time.Since(start).Round(time.Second).String())
	return nil
}

// fileName is a binary's release name: docker-backup-linux-arm-v7, docker-backup-windows-amd64.exe.
func fileName(prefix, platform string) string {
	n := prefix + "-" + strings.ReplaceAll(platform, "/", "-")
	if strings.HasPrefix(platform, "windows/") {
		n += ".exe"
	}
	return n
}

func (c *buildConfig) ldflags(extra ...string) string {
	f := []string{"-s", "-w", "-X", versionPkg + ".Version=" + c.version, "-X", versionPkg + ".Commit=" + c.commit}
	for _, e := range extra {
		f = append(f, "-X", versionPkg+"."+e)
	}
	return strings.Join(f, " ")
}

// goBuild builds pkg for platform, static and reproducible: no cgo, paths trimmed, no VCS
// stamp (the commit is linked in), the toolchain's defaults for the CPU level fixed.
func (c *buildConfig) goBuild(pkg, platform, ldflags, out string) error {
	parts := strings.Split(platform, "/")
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+parts[0], "GOARCH="+parts[1], "GOFLAGS=",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOTOOLCHAIN=local")
	if len(parts) == 3 {
		env = append(env, "GOARM="+strings.TrimPrefix(parts[2], "v"))
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", abs, pkg)
	cmd.Dir, cmd.Env, cmd.Stderr = c.root, env, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w", pkg, platform, err)
	}
	return nil
}

func (c *buildConfig) buildSidecars() ([]sbom.Binary, error) {
	var out []sbom.Binary
	for _, p := range sidecarPlatforms {
		f := filepath.Join(c.work, fileName("sidecar", p))
		if err := c.goBuild("./cmd/sidecar", p, c.ldflags(), f); err != nil {
			return nil, err
		}
		out = append(out, sbom.Binary{Name: fileName("sidecar", p), Path: f, Platform: p})
	}
	return out, nil
}

// images writes each platform's `docker load` archive and the multi-platform OCI layout,
// and returns the pins to link into the plugin (internal/version.ParsePins' form) and the
// index's digest.
func (c *buildConfig) images(sidecars []sbom.Binary) (string, string, error) {
	var imgs []v1.Image
	var platforms []v1.Platform
	var pins []string
	tag := "docker-backup-sidecar:" + c.version
	for i, s := range sidecars {
		p, err := image.Platform(s.Platform)
		if err != nil {
			return "", "", err
		}
		img, err := image.Sidecar(s.Path, p, c.meta())
		if err != nil {
			return "", "", err
		}
		if err := image.WriteDockerArchive(filepath.Join(c.out, fileName("sidecar", s.Platform)+".tar"), tag, img); err != nil {
			return "", "", err
		}
		config, manifest, err := image.Digests(img)
		if err != nil {
			return "", "", err
		}
		sidecars[i].Image = manifest
		pins = append(pins, s.Platform+"@"+config, s.Platform+"@"+manifest)
		imgs, platforms = append(imgs, img), append(platforms, p)
	}
	idx := image.Index(imgs, platforms, c.meta())
	d, err := idx.Digest()
	if err != nil {
		return "", "", err
	}
	if err := image.WriteOCIArchive(filepath.Join(c.out, "sidecar.oci.tar"), c.version, idx, c.created()); err != nil {
		return "", "", err
	}
	return strings.Join(append([]string{"index@" + d.String()}, pins...), ","), d.String(), nil
}

func (c *buildConfig) buildPlugins(pins string) error {
	extra := []string{"SidecarDigests=" + pins}
	if c.repo != "" {
		extra = append(extra, "SidecarRepository="+c.repo)
	}
	for _, p := range pluginPlatforms {
		if err := c.goBuild("./cmd/docker-backup", p, c.ldflags(extra...), filepath.Join(c.out, fileName("docker-backup", p))); err != nil {
			return err
		}
	}
	return nil
}

func (c *buildConfig) packages() error {
	m := packages.Meta{Version: c.version, Homepage: c.source, License: c.license, Maintainer: c.maintainer, MTime: c.created()}
	for _, arch := range packageArchs {
		bin := filepath.Join(c.out, fileName("docker-backup", "linux/"+arch))
		for _, format := range []string{"deb", "rpm"} {
			if err := packages.Build(filepath.Join(c.out, packages.FileName(c.version, arch, format)), format, bin, arch, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *buildConfig) sboms(sidecars []sbom.Binary, index string) error {
	g, err := sbom.ModGraph(c.root)
	if err != nil {
		return err
	}
	var plugins []sbom.Binary
	for _, p := range pluginPlatforms {
		f := filepath.Join(c.out, fileName("docker-backup", p))
		sum, err := checksums.SHA256(f)
		if err != nil {
			return err
		}
		plugins = append(plugins, sbom.Binary{Name: filepath.Base(f), Path: f, SHA256: sum, Platform: p})
	}
	plugin := sbom.Product{Name: "docker-backup", Version: c.version, Type: cdx.ComponentTypeApplication,
		PURL: "pkg:golang/github.com/docker-backup/docker-backup@" + c.version, License: c.license, Source: c.source,
		Created: c.created(), Binaries: plugins}
	if err := sbom.Write(filepath.Join(c.out, "docker-backup.cdx.json"), plugin, g); err != nil {
		return err
	}
	sidecar := sbom.Product{Name: "docker-backup-sidecar", Version: c.version, Type: cdx.ComponentTypeContainer,
		PURL: "pkg:oci/docker-backup-sidecar@" + strings.ReplaceAll(index, ":", "%3A") + "?tag=" + c.version, Digest: index,
		License: c.license, Source: c.source, Created: c.created(), Binaries: sidecars}
	return sbom.Write(filepath.Join(c.out, "docker-backup-sidecar.cdx.json"), sidecar, g)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
