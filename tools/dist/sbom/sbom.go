// Package sbom writes CycloneDX SBOMs of the release from the module graph: the modules
// each binary links (its Go build information) and their requirements (`go mod graph`).
package sbom

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// Binary is one built file the SBOM describes.
type Binary struct {
	Name     string // its name in the release (docker-backup-linux-amd64) or image platform
	Path     string // where to read it
	SHA256   string // the file's digest ("" for a binary inside an image)
	Platform string // linux/arm/v7
	Image    string // for a binary in an image: the platform image's manifest digest
}

// Product is what one SBOM describes: an application (the plugin's binaries) or a
// container image (the sidecar's platform images).
type Product struct {
	Name     string
	Version  string
	Type     cdx.ComponentType // application or container
	PURL     string
	Digest   string // a container's index digest
	License  string // SPDX expression; "" or NOASSERTION: none stated
	Source   string
	Created  time.Time
	Binaries []Binary
}

// Graph is the module requirement graph: module path → paths it requires.
type Graph map[string][]string

// ModGraph runs `go mod graph` in the main module's directory.
func ModGraph(dir string) (Graph, error) {
	cmd := exec.Command("go", "mod", "graph")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod graph: %w", err)
	}
	g := Graph{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		fp, _, _ := strings.Cut(from, "@")
		tp, _, _ := strings.Cut(to, "@")
		g[fp] = append(g[fp], tp)
	}
	return g, sc.Err()
}

type module struct{ path, version, sum string }

func (m module) ref() string {
	return "pkg:golang/" + m.path + "@" + url.PathEscape(m.version)
}

// Write writes p's SBOM to file as CycloneDX 1.6 JSON. Same inputs, same bytes.
func Write(file string, p Product, g Graph) error {
	mods := map[string]module{} // path → the version the binaries link
	linked := map[string][]string{}
	comps := []cdx.Component{}
	var main string
	for _, b := range p.Binaries {
		bi, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return fmt.Errorf("reading the build information of %s: %w", b.Path, err)
		}
		main = bi.Main.Path
		ref := "file:" + b.Name
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			m := module{d.Path, d.Version, d.Sum}
			if have, ok := mods[d.Path]; ok && have.version != m.version {
				return fmt.Errorf("%s links %s@%s, another binary %s", b.Name, d.Path, d.Version, have.version)
			}
			mods[d.Path] = m
			linked[ref] = append(linked[ref], m.ref())
		}
		comps = append(comps, binaryComponent(b, ref, bi))
	}
	for _, m := range mods {
		comps = append(comps, cdx.Component{
			BOMRef: m.ref(), Type: cdx.ComponentTypeLibrary, Name: m.path, Version: m.version, PackageURL: m.ref(),
			Properties: &[]cdx.Property{{Name: "go:module:sum", Value: m.sum}},
		})
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].BOMRef < comps[j].BOMRef })

	top := topComponent(p)
	deps := []cdx.Dependency{dependency(top.BOMRef, keys(linked))}
	for ref, ms := range linked {
		deps = append(deps, dependency(ref, ms))
	}
	for path, m := range mods {
		var req []string
		for _, r := range g[path] {
			if rm, ok := mods[r]; ok {
				req = append(req, rm.ref())
			}
		}
		deps = append(deps, dependency(m.ref(), req))
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Ref < deps[j].Ref })

	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{
		Timestamp: p.Created.UTC().Format(time.RFC3339),
		Component: &top,
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "make dist (tools/dist)", Version: p.Version,
		}}},
		Properties: &[]cdx.Property{{Name: "go:main-module", Value: main}},
	}
	bom.Components, bom.Dependencies = &comps, &deps
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	enc := cdx.NewBOMEncoder(f, cdx.BOMFileFormatJSON).SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Close()
}

func topComponent(p Product) cdx.Component {
	c := cdx.Component{BOMRef: p.PURL, Type: p.Type, Name: p.Name, Version: p.Version, PackageURL: p.PURL,
		ExternalReferences: &[]cdx.ExternalReference{{Type: cdx.ERTypeVCS, URL: p.Source}}}
	if p.License != "" && p.License != "NOASSERTION" {
		c.Licenses = &cdx.Licenses{{Expression: p.License}}
	}
	if p.Digest != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(p.Digest, "sha256:")}}
	}
	return c
}

func binaryComponent(b Binary, ref string, bi *buildinfo.BuildInfo) cdx.Component {
	props := []cdx.Property{{Name: "platform", Value: b.Platform}, {Name: "go:version", Value: bi.GoVersion}}
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" { // the version and the image pins: in the SBOM's metadata already
			props = append(props, cdx.Property{Name: "go:build:" + s.Key, Value: s.Value})
		}
	}
	c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeFile, Name: b.Name, Properties: &props}
	if b.SHA256 != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: b.SHA256}}
	}
	if b.Image != "" {
		props = append(props, cdx.Property{Name: "oci:manifest-digest", Value: b.Image})
		c.Properties = &props
	}
	return c
}

func dependency(ref string, on []string) cdx.Dependency {
	sort.Strings(on)
	on = compact(on)
	d := cdx.Dependency{Ref: ref}
	if len(on) > 0 {
		d.Dependencies = &on
	}
	return d
}

func compact(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func keys(m map[string][]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	return k
}
