// Package e2e runs docker-backup end to end: the real `docker backup` CLI plugin, a real
// Docker engine, real PostgreSQL servers in containers, with the data compared after every
// restore. Fixture images are built from Debian packages by test/fixtures/build.sh (cached by
// recipe hash); set DOCKER_BACKUP_TEST_POSTGRES_IMAGE=postgres:16 to use the official image.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// images used by the tests, set in TestMain.
var (
	postgresImage string // PostgreSQL honouring the official image's env contract
	plainImage    string // a Debian userland with sh and coreutils
	pauseImage    string // one static binary: no shell, no tar
	dockerConfig  string // DOCKER_CONFIG with the freshly built plugin in cli-plugins/
	pluginBinary  string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: -short given: the end-to-end tests need a Docker engine and are not run")
		return 0
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no Docker engine is reachable (%v: %s).\nStart dockerd, or run `bash .ci/run`, which installs and starts one; `go test -short` skips these tests.\n", err, bytes.TrimSpace(out))
		return 1
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ok bool
	if postgresImage, ok = image("DOCKER_BACKUP_TEST_POSTGRES_IMAGE", root, "postgres"); !ok {
		return 1
	}
	if plainImage, ok = image("DOCKER_BACKUP_TEST_PLAIN_IMAGE", root, "plain"); !ok {
		return 1
	}
	if pauseImage, ok = image("DOCKER_BACKUP_TEST_PAUSE_IMAGE", root, "pause"); !ok {
		return 1
	}

	dockerConfig, err = os.MkdirTemp("", "docker-backup-e2e-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dockerConfig)
	pluginBinary = filepath.Join(dockerConfig, "cli-plugins", "docker-backup")
	build := exec.Command("go", "build", "-o", pluginBinary, "./cmd/docker-backup")
	build.Dir = root
	// Static, as `make` builds it: the plugin is also its own worker image.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the plugin: %v\n%s", err, out)
		return 1
	}
	fixtureRoot = root
	fmt.Printf("e2e: postgres=%s plain=%s pause=%s\n", postgresImage, plainImage, pauseImage)
	return m.Run()
}

// fixtureRoot is the repository root, for building fixture images on first use.
var fixtureRoot string

// fixtureImage returns a function giving the image named by env, or the fixture built once
// on first use (so that a test run of one strategy builds only its images).
func fixtureImage(env, fixture string) func(*testing.T) string {
	var once sync.Once
	var ref string
	var ok bool
	return func(t *testing.T) string {
		t.Helper()
		once.Do(func() { ref, ok = image(env, fixtureRoot, fixture) })
		if !ok {
			t.Fatalf("fixture image %q could not be built", fixture)
		}
		return ref
	}
}

// image returns the image named by env, or builds the fixture.
func image(env, root, fixture string) (string, bool) {
	if v := os.Getenv(env); v != "" {
		return v, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "test/fixtures/build.sh"), fixture)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building fixture image %q failed: %v\n", fixture, err)
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}
