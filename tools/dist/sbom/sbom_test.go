package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// The SBOM of a binary (tools/dist's own, built here: a test binary records no modules)
// lists the modules it links, their requirements from the graph, and is the same twice.
func TestWrite(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "dist")
	if out, err := exec.Command("go", "build", "-o", exe, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g, err := ModGraph("..")
	if err != nil {
		t.Fatal(err)
	}
	p := Product{Name: "dist", Version: "v1.2.3", Type: cdx.ComponentTypeApplication, PURL: "pkg:golang/x@v1.2.3",
		Source: "https://example.invalid", Created: time.Unix(1700000000, 0),
		Binaries: []Binary{{Name: "dist-test", Path: exe, SHA256: "00", Platform: "linux/amd64"}}}
	dir := t.TempDir()
	var out [2][]byte
	for i := range out {
		f := filepath.Join(dir, "sbom.json")
		if err := Write(f, p, g); err != nil {
			t.Fatal(err)
		}
		out[i], _ = os.ReadFile(f)
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Error("two SBOMs of the same inputs differ")
	}
	var bom struct {
		SpecVersion string
		Metadata    struct{ Timestamp string }
		Components  []struct{ Name, Version, Purl, Type string }
	}
	if err := json.Unmarshal(out[0], &bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != "1.6" || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("spec %s, timestamp %s", bom.SpecVersion, bom.Metadata.Timestamp)
	}
	found := false
	for _, c := range bom.Components {
		if c.Name == "github.com/google/go-containerregistry" && c.Type == "library" && strings.HasPrefix(c.Purl, "pkg:golang/github.com/google/go-containerregistry@v") {
			found = true
		}
	}
	if !found {
		t.Errorf("the SBOM does not list go-containerregistry: %s", out[0][:min(len(out[0]), 2000)])
	}
}
