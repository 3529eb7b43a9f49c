//go:build dist

package dist

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/docker-backup/docker-backup/internal/version"
)

// checksums.txt lists every other file of the release once, in `sha256sum -c` format, and
// the files match it (by Go, and by sha256sum as a user checks them).
func TestChecksums(t *testing.T) {
	f, err := os.Open(dist("checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || listed[name] != "" {
			t.Fatalf("checksums.txt line %q: want one \"<sha256>  <name>\" per file", sc.Text())
		}
		listed[name] = sum
	}
	entries, err := os.ReadDir(distDir)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, e := range entries {
		if e.Name() != "checksums.txt" {
			have = append(have, e.Name())
		}
	}
	want := expectedFiles()
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Fatalf("the release holds %q, want %q", have, want)
	}
	for _, n := range have {
		if got := sha256File(t, dist(n)); listed[n] != got {
			t.Errorf("%s: checksums.txt says %s, the file is %s", n, listed[n], got)
		}
	}
	if len(listed) != len(have) {
		t.Errorf("checksums.txt lists %d files, the release has %d others", len(listed), len(have))
	}
	cmd := []string{"-c", "checksums.txt"}
	out, stderr, err := run(nil, "sh", "-c", "cd '"+distDir+"' && sha256sum "+strings.Join(cmd, " "))
	if err != nil || strings.Count(out, ": OK") != len(have) {
		t.Fatalf("sha256sum -c checksums.txt: %v\n%s%s", err, out, stderr)
	}
}

// Each plugin binary is the platform it claims (file(1) and its Go build information), static,
// stripped, built without cgo and with trimmed paths, and carries the version.
func TestBinaryPlatforms(t *testing.T) {
	fileSays := map[string][]string{
		"linux/amd64":   {"ELF 64-bit LSB executable, x86-64", "statically linked", "stripped"},
		"linux/arm64":   {"ELF 64-bit LSB executable, ARM aarch64", "statically linked", "stripped"},
		"linux/arm/v7":  {"ELF 32-bit LSB executable, ARM, EABI5", "statically linked", "stripped"},
		"darwin/amd64":  {"Mach-O 64-bit x86_64 executable"},
		"darwin/arm64":  {"Mach-O 64-bit arm64 executable"},
		"windows/amd64": {"PE32+ executable (console) x86-64"},
		"windows/arm64": {"PE32+ executable (console) Aarch64"},
	}
	for _, p := range pluginPlatforms {
		name := pluginFile(p)
		out := must(t, "file", "-b", dist(name))
		contains(t, "file "+name, out, fileSays[p]...)
		if strings.Contains(out, "not stripped") || strings.Contains(out, "dynamically linked") {
			t.Errorf("file %s: %s", name, out)
		}
		settings := buildSettings(t, dist(name))
		parts := strings.Split(p, "/")
		want := map[string]string{"GOOS": parts[0], "GOARCH": parts[1], "CGO_ENABLED": "0", "-trimpath": "true"}
		if len(parts) == 3 {
			want["GOARM"] = strings.TrimPrefix(parts[2], "v")
		}
		for k, v := range want {
			if settings[k] != v {
				t.Errorf("%s: build setting %s = %q, want %q", name, k, settings[k], v)
			}
		}
		// Linked in: the version and the sidecar image's pins; stripped: no DWARF (-w).
		b, err := os.ReadFile(dist(name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(distVersion)) || !bytes.Contains(b, []byte(linkedPinsText(t, dist(pluginFile("linux/amd64"))))) {
			t.Errorf("%s does not hold the version %s and the linux/amd64 plugin's image pins", name, distVersion)
		}
		if hasDWARF(t, dist(name), parts[0]) {
			t.Errorf("%s has DWARF debug information: not built with -w", name)
		}
	}
	if info := pluginInfo(t); info.Version != distVersion || len(info.Commit) != 40 || info.Platform != "linux/amd64" {
		t.Errorf("docker-backup-linux-amd64 says %+v", info)
	}
}

// hasDWARF reports whether an executable for goos carries DWARF sections.
func hasDWARF(t *testing.T, file, goos string) bool {
	t.Helper()
	var err error
	switch goos {
	case "linux":
		var f *elf.File
		if f, err = elf.Open(file); err == nil {
			defer f.Close()
			_, err = f.DWARF()
		}
	case "darwin":
		var f *macho.File
		if f, err = macho.Open(file); err == nil {
			defer f.Close()
			_, err = f.DWARF()
		}
	case "windows":
		var f *pe.File
		if f, err = pe.Open(file); err == nil {
			defer f.Close()
			_, err = f.DWARF()
		}
	}
	return err == nil
}

// buildSettings are a binary's Go build settings (go version -m).
func buildSettings(t *testing.T, file string) map[string]string {
	t.Helper()
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	m := map[string]string{"go": bi.GoVersion}
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

// linkedPins are the sidecar image pins linked into a plugin binary (read from its bytes:
// with -trimpath, Go records no -ldflags in the build information).
func linkedPins(t *testing.T, file string) version.Pins {
	t.Helper()
	pins, err := version.ParsePins(linkedPinsText(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return pins
}

func linkedPinsText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("index@sha256:"))
	if i < 0 {
		t.Fatalf("%s links no sidecar image pins", file)
	}
	end := i
	for end < len(b) && strings.IndexByte("abcdefghijklmnopqrstuvwxyz0123456789@:/,", b[end]) >= 0 {
		end++
	}
	return string(b[i:end])
}

// pluginInfo is what the release's linux/amd64 plugin says of itself (version --format json).
func pluginInfo(t *testing.T) version.Info {
	t.Helper()
	var info version.Info
	out := must(t, dist("docker-backup-linux-amd64"), "backup", "version", "--format", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version --format json: %v\n%s", err, out)
	}
	return info
}

// The .deb and .rpm hold the plugin of their architecture at Docker's plugin path, with the
// release's version, executable, and nothing else but directories.
func TestPackageContents(t *testing.T) {
	v := strings.TrimPrefix(distVersion, "v")
	for _, c := range []struct{ goarch, rpmArch, elf string }{
		{"amd64", "x86_64", "x86-64"}, {"arm64", "aarch64", "ARM aarch64"},
	} {
		deb := dist("docker-backup_" + v + "_" + c.goarch + ".deb")
		info := must(t, "dpkg-deb", "--info", deb)
		contains(t, "dpkg-deb --info", info, "Package: docker-backup", "Architecture: "+c.goarch, "Enhances: docker-ce-cli")
		if f := must(t, "dpkg-deb", "--field", deb, "Version"); !strings.HasPrefix(f, strings.SplitN(v, "-", 2)[0]) {
			t.Errorf("%s: Version %q for release %s", deb, f, distVersion)
		}
		list := must(t, "dpkg-deb", "--contents", deb)
		contains(t, "dpkg-deb --contents "+c.goarch, list, "-rwxr-xr-x root/root", "./usr/libexec/docker/cli-plugins/docker-backup")
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			if !strings.HasPrefix(line, "d") && !strings.HasSuffix(line, "./usr/libexec/docker/cli-plugins/docker-backup") {
				t.Errorf("%s holds more than the plugin: %s", deb, line)
			}
		}
		// The packaged binary is the release's.
		x := t.TempDir()
		must(t, "dpkg-deb", "--extract", deb, x)
		if got, want := sha256File(t, filepath.Join(x, "usr/libexec/docker/cli-plugins/docker-backup")), sha256File(t, dist("docker-backup-linux-"+c.goarch)); got != want {
			t.Errorf("%s holds another binary than docker-backup-linux-%s", deb, c.goarch)
		}

		rpm := dist("docker-backup_" + v + "_" + c.goarch + ".rpm")
		q := must(t, "rpm", "-qp", "--queryformat", "%{NAME} %{VERSION} %{ARCH} %{LICENSE}\n", rpm)
		contains(t, "rpm -qp", q, "docker-backup "+strings.SplitN(v, "-", 2)[0], " "+c.rpmArch+" ")
		files := must(t, "rpm", "-qp", "--dump", rpm)
		if !strings.HasPrefix(files, "/usr/libexec/docker/cli-plugins/docker-backup ") || !strings.Contains(files, " 0100755 root root ") {
			t.Errorf("rpm --dump %s: %s", rpm, files)
		}
		// Installed with rpm itself into an empty root, the plugin answers.
		root := t.TempDir()
		must(t, "rpm", "--root", root, "--initdb")
		must(t, "rpm", "--root", root, "-i", "--nodeps", "--ignorearch", "--ignoreos", "--noscripts", rpm)
		installed := filepath.Join(root, "usr/libexec/docker/cli-plugins/docker-backup")
		contains(t, "file of the rpm's plugin", must(t, "file", "-b", installed), c.elf)
		if c.goarch == "amd64" {
			contains(t, "the rpm's plugin", must(t, installed, "docker-cli-plugin-metadata"), `"Version": "`+distVersion+`"`)
		}
	}
}

// The SBOMs are CycloneDX JSON made from the module graph: every binary with its SHA-256,
// the modules each links (the sidecar's without the docker CLI), and the image's digest.
func TestSBOM(t *testing.T) {
	type component struct {
		Ref     string `json:"bom-ref"`
		Type    string `json:"type"`
		Name    string `json:"name"`
		Version string `json:"version"`
		Hashes  []struct {
			Alg, Content string
		} `json:"hashes"`
	}
	type bom struct {
		Format   string `json:"bomFormat"`
		Spec     string `json:"specVersion"`
		Metadata struct {
			Timestamp string    `json:"timestamp"`
			Component component `json:"component"`
		} `json:"metadata"`
		Components   []component `json:"components"`
		Dependencies []struct {
			Ref string   `json:"ref"`
			On  []string `json:"dependsOn"`
		} `json:"dependencies"`
	}
	read := func(name string) (bom, map[string]component) {
		var b bom
		raw, err := os.ReadFile(dist(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b.Format != "CycloneDX" || b.Spec != "1.6" || b.Metadata.Component.Version != distVersion || b.Metadata.Timestamp == "" {
			t.Errorf("%s: format %q %q, component %+v, timestamp %q", name, b.Format, b.Spec, b.Metadata.Component, b.Metadata.Timestamp)
		}
		byName := map[string]component{}
		for _, c := range b.Components {
			byName[c.Name] = c
		}
		return b, byName
	}

	plugin, comps := read("docker-backup.cdx.json")
	for _, p := range pluginPlatforms {
		c, ok := comps[pluginFile(p)]
		if !ok || c.Type != "file" || len(c.Hashes) != 1 || c.Hashes[0].Content != sha256File(t, dist(pluginFile(p))) {
			t.Errorf("docker-backup.cdx.json: %s is %+v; want a file with the binary's SHA-256", pluginFile(p), c)
		}
	}
	for _, m := range []string{"github.com/docker/cli", "github.com/spf13/cobra", "github.com/klauspost/compress", "golang.org/x/sys"} {
		if c, ok := comps[m]; !ok || c.Type != "library" || c.Version == "" {
			t.Errorf("docker-backup.cdx.json: module %s is %+v", m, c)
		}
	}
	edges := 0
	for _, d := range plugin.Dependencies {
		edges += len(d.On)
	}
	if edges < len(plugin.Components) {
		t.Errorf("docker-backup.cdx.json: %d dependency edges for %d components: the module graph is missing", edges, len(plugin.Components))
	}

	sidecar, comps := read("docker-backup-sidecar.cdx.json")
	if sidecar.Metadata.Component.Type != "container" || len(sidecar.Metadata.Component.Hashes) != 1 ||
		"sha256:"+sidecar.Metadata.Component.Hashes[0].Content != linkedPins(t, dist("docker-backup-linux-amd64")).Index {
		t.Errorf("docker-backup-sidecar.cdx.json: the image is %+v; want a container with the index's digest", sidecar.Metadata.Component)
	}
	if _, ok := comps["github.com/docker/cli"]; ok {
		t.Error("docker-backup-sidecar.cdx.json lists github.com/docker/cli: the sidecar must not link it")
	}
	for _, m := range []string{"modernc.org/sqlite", "github.com/prometheus/client_golang"} {
		if _, ok := comps[m]; !ok {
			t.Errorf("docker-backup-sidecar.cdx.json does not list %s", m)
		}
	}
}
