//go:build dist

package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shells runs install.sh under every POSIX shell here (sh, and dash when it is another).
func shells() []string {
	s := []string{"sh"}
	if p, err := exec.LookPath("dash"); err == nil {
		if q, _ := exec.LookPath("sh"); q != p {
			s = append(s, "dash")
		}
	}
	return s
}

// install.sh --dir installs the plugin for this machine into an empty docker configuration,
// verified, where the docker CLI then runs it; --url downloads the same (curl, file://).
func TestInstallScript(t *testing.T) {
	for _, sh := range shells() {
		for _, src := range [][]string{{"--dir", distDir}, {"--url", "file://" + distDir}} {
			cfg := t.TempDir()
			env := []string{"DOCKER_CONFIG=" + cfg}
			out, stderr, err := run(env, sh, append([]string{filepath.Join(distDir, "install.sh")}, src...)...)
			if err != nil {
				t.Fatalf("%s install.sh %s: %v\n%s%s", sh, src, err, out, stderr)
			}
			plugin := filepath.Join(cfg, "cli-plugins", "docker-backup")
			contains(t, sh+" install.sh "+src[0], out, "Installed docker-backup-linux-amd64 (sha256 verified) as "+plugin,
				"docker backup "+distVersion+" is ready", "To remove it: rm "+plugin)
			if sha256File(t, plugin) != sha256File(t, dist("docker-backup-linux-amd64")) {
				t.Errorf("%s: the installed plugin is not docker-backup-linux-amd64", sh)
			}
			if info, err := os.Stat(plugin); err != nil || info.Mode().Perm() != 0o755 {
				t.Errorf("the installed plugin: %v, %v", info, err)
			}
			v, stderr, err := run(env, "docker", "backup", "version")
			if err != nil || !strings.Contains(v, "Version:   "+distVersion) {
				t.Errorf("docker backup version with DOCKER_CONFIG=%s: %v\n%s%s", cfg, err, v, stderr)
			}
		}
	}

	// Another platform, chosen: the Windows binary under its plugin name.
	cfg := t.TempDir()
	out, stderr, err := run([]string{"DOCKER_CONFIG=" + cfg}, "sh", dist("install.sh"), "--dir", distDir, "--os", "windows", "--arch", "arm64")
	if err != nil || sha256File(t, filepath.Join(cfg, "cli-plugins", "docker-backup.exe")) != sha256File(t, dist("docker-backup-windows-arm64.exe")) {
		t.Errorf("install.sh --os windows --arch arm64: %v\n%s%s", err, out, stderr)
	}
}

// install.sh refuses bad input with an error naming the value and what is allowed, and
// installs nothing then.
func TestInstallScriptRefuses(t *testing.T) {
	tampered := t.TempDir()
	for _, n := range []string{"checksums.txt", "docker-backup-linux-amd64"} {
		b, err := os.ReadFile(dist(n))
		if err != nil {
			t.Fatal(err)
		}
		if n != "checksums.txt" {
			b[len(b)/2] ^= 0xff
		}
		if err := os.WriteFile(filepath.Join(tampered, n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	onlySums := t.TempDir()
	b, _ := os.ReadFile(dist("checksums.txt"))
	_ = os.WriteFile(filepath.Join(onlySums, "checksums.txt"), b, 0o644)
	noSums := t.TempDir()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--dir", distDir, "--os", "plan9"}, []string{`unsupported operating system "plan9"`, "linux, darwin or windows"}},
		{[]string{"--dir", distDir, "--arch", "s390x"}, []string{"no release binary for linux/s390x", "linux/arm-v7", "windows/arm64"}},
		{[]string{"--dir", distDir, "--os", "darwin", "--arch", "arm-v7"}, []string{"no release binary for darwin/arm-v7"}},
		{[]string{"--dir", tampered}, []string{"checksum mismatch for docker-backup-linux-amd64", "nothing was installed"}},
		{[]string{"--dir", "/nonexistent/dist"}, []string{"--dir /nonexistent/dist: no such directory"}},
		{[]string{"--dir", onlySums}, []string{onlySums + " has no docker-backup-linux-amd64"}},
		{[]string{"--dir", noSums}, []string{noSums + " has no checksums.txt"}},
		{[]string{"--frobnicate"}, []string{`unknown option "--frobnicate"`, "Usage: install.sh"}},
		{[]string{"--dir"}, []string{"--dir needs a directory"}},
	} {
		cfg := t.TempDir()
		out, stderr, err := run([]string{"DOCKER_CONFIG=" + cfg}, "sh", append([]string{dist("install.sh")}, c.args...)...)
		if err == nil {
			t.Errorf("install.sh %q succeeded:\n%s", c.args, out)
			continue
		}
		contains(t, "install.sh "+strings.Join(c.args, " "), stderr, c.want...)
		if _, err := os.Stat(filepath.Join(cfg, "cli-plugins")); !os.IsNotExist(err) {
			t.Errorf("install.sh %q failed but made %s/cli-plugins", c.args, cfg)
		}
	}
}

// install.sh --image loads the sidecar image of the engine's platform, checked like the binary.
func TestInstallScriptImage(t *testing.T) {
	tag := "docker-backup-sidecar:" + distVersion
	_, _, _ = run(nil, "docker", "image", "rm", tag)
	out, stderr, err := run([]string{"DOCKER_CONFIG=" + t.TempDir()}, "sh", dist("install.sh"), "--dir", distDir, "--image")
	if err != nil {
		t.Fatalf("install.sh --image: %v\n%s%s", err, out, stderr)
	}
	contains(t, "install.sh --image", out, tag+" loaded into the Docker engine (linux/x86_64)")
	if id := strings.TrimSpace(must(t, "docker", "image", "inspect", "-f", "{{.Id}}", tag)); !linkedPins(t, dist("docker-backup-linux-amd64")).Known("linux/amd64", id) {
		t.Errorf("install.sh --image loaded %s: not the release's image", id)
	}
}

// The amd64 .deb installs with dpkg in a plain Debian container: the plugin lands where
// Docker's plugin packages put theirs, answers docker-cli-plugin-metadata, is found by the
// docker CLI there, and is gone after dpkg -r. Then install.sh --system (dash, no curl)
// installs it for every user.
func TestDebInstallsInDebian(t *testing.T) {
	debian := fixture(t, "plain")
	deb := "docker-backup_" + strings.TrimPrefix(distVersion, "v") + "_amd64.deb"
	docker := must(t, "sh", "-c", "command -v docker")
	script := `set -e
dpkg -i /dist/` + deb + `
dpkg -s docker-backup | grep -E '^(Status|Version|Architecture):'
ls -l /usr/libexec/docker/cli-plugins/docker-backup
/usr/libexec/docker/cli-plugins/docker-backup docker-cli-plugin-metadata
echo
docker backup version
dpkg -r docker-backup >/dev/null
test ! -e /usr/libexec/docker/cli-plugins/docker-backup && echo removed
sh /dist/install.sh --dir /dist --system
docker backup version`
	out := must(t, "docker", "run", "--rm", "--log-driver", "none", "-v", distDir+":/dist:ro",
		"-v", strings.TrimSpace(docker)+":/usr/bin/docker:ro", "-v", "/var/run/docker.sock:/var/run/docker.sock",
		"-e", "HOME=/root", debian, "sh", "-c", script)
	contains(t, "the .deb in Debian", out, "Status: install ok installed", "Architecture: amd64",
		"-rwxr-xr-x 1 root root", `"SchemaVersion": "0.1.0"`, `"Vendor": "docker-backup"`, `"Version": "`+distVersion+`"`,
		"Version:   "+distVersion, "Platform:  linux/amd64", "removed",
		"as /usr/local/lib/docker/cli-plugins/docker-backup", "To remove it: rm /usr/local/lib/docker/cli-plugins/docker-backup")
	if strings.Count(out, "Version:   "+distVersion) != 2 {
		t.Errorf("the docker CLI did not run the plugin installed by install.sh --system:\n%s", out)
	}
}

// fixture builds (or finds) a fixture image of test/fixtures.
func fixture(t *testing.T, name string) string {
	t.Helper()
	out, stderr, err := run(nil, filepath.Join(repoRoot, "test/fixtures/build.sh"), name)
	if err != nil {
		t.Fatalf("test/fixtures/build.sh %s: %v\n%s", name, err, stderr)
	}
	return strings.TrimSpace(out)
}
