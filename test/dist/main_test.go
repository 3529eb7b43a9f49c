//go:build dist

// Package dist checks the release files of make dist for real (make dist-check): the
// checksums, each binary's platform, the packages installed or read by dpkg and rpm, the
// sidecar images loaded into the engine and run, the OCI layout pushed to a registry and
// pulled by the engine, install.sh into an empty docker configuration, and a plugin that
// cannot be its own worker using the release's sidecar image.
//
//	DIST_DIR=$PWD/dist DIST_VERSION=v1.2.3 DIST_TOOL=$PWD/bin/dist go test -tags dist ./test/dist
package dist

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var (
	distDir     string // the release files
	distVersion string // their version
	distTool    string // tools/dist's binary (for its registry)
	repoRoot    string
)

// The release's platforms and files.
var (
	pluginPlatforms  = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}
	sidecarPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}
)

func TestMain(m *testing.M) {
	distDir, distVersion, distTool = os.Getenv("DIST_DIR"), os.Getenv("DIST_VERSION"), os.Getenv("DIST_TOOL")
	if distDir == "" || distVersion == "" || distTool == "" {
		fmt.Fprintln(os.Stderr, "test/dist: set DIST_DIR, DIST_VERSION and DIST_TOOL (make dist-check does)")
		os.Exit(1)
	}
	if _, err := os.Stat(filepath.Join(distDir, "checksums.txt")); err != nil {
		fmt.Fprintf(os.Stderr, "test/dist: %v: run make dist first\n", err)
		os.Exit(1)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = root
	os.Exit(m.Run())
}

// expectedFiles are the release's files besides checksums.txt.
func expectedFiles() []string {
	var f []string
	for _, p := range pluginPlatforms {
		f = append(f, pluginFile(p))
	}
	v := strings.TrimPrefix(distVersion, "v")
	for _, a := range []string{"amd64", "arm64"} {
		f = append(f, "docker-backup_"+v+"_"+a+".deb", "docker-backup_"+v+"_"+a+".rpm")
	}
	for _, p := range sidecarPlatforms {
		f = append(f, "sidecar-"+strings.ReplaceAll(p, "/", "-")+".tar")
	}
	return append(f, "sidecar.oci.tar", "docker-backup.cdx.json", "docker-backup-sidecar.cdx.json", "install.sh")
}

func pluginFile(platform string) string {
	n := "docker-backup-" + strings.ReplaceAll(platform, "/", "-")
	if strings.HasPrefix(platform, "windows/") {
		n += ".exe"
	}
	return n
}

func dist(name string) string { return filepath.Join(distDir, name) }

// run runs a command and returns its stdout and stderr.
func run(env []string, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// must runs a command and fails the test unless it succeeds.
func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := run(nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func sha256File(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, s)
		}
	}
}
