package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/artifact"
)

// The fault suite runs a plugin and a sidecar built with -tags faultinject: a fault point
// named in DOCKER_BACKUP_FAULT pauses the process there, the test kills or stops it, and
// checks that nothing was lost.

var (
	faultPluginOnce sync.Once
	faultPluginBin  string // the fault-injection plugin, run directly (`docker-backup backup ...`)
	faultConfig     string // its DOCKER_CONFIG (its own signing key)
	faultPluginErr  error
)

func faultPlugin(t *testing.T) string {
	t.Helper()
	faultPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docker-backup-faults-")
		if err != nil {
			faultPluginErr = err
			return
		}
		faultConfig = dir
		faultPluginBin = filepath.Join(dir, "cli-plugins", "docker-backup")
		build := exec.Command("go", "build", "-tags", "faultinject", "-o", faultPluginBin, "./cmd/docker-backup")
		build.Dir = fixtureRoot
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			faultPluginErr = fmt.Errorf("building the fault plugin: %v\n%s", err, out)
		}
	})
	if faultPluginErr != nil {
		t.Fatal(faultPluginErr)
	}
	return faultPluginBin
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// faultProc is the fault plugin running one command.
type faultProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	out, err syncBuffer
	done     chan struct{}
	exitErr  error
}

// startFault runs `docker-backup backup ARGS` with DOCKER_BACKUP_FAULT=point.
func startFault(t *testing.T, point string, args ...string) *faultProc {
	t.Helper()
	p := &faultProc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(faultPlugin(t), append([]string{"backup"}, args...)...)
	p.cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+faultConfig, "DOCKER_BACKUP_FAULT="+point)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// waitPoint waits until the plugin is paused at its fault point.
func (p *faultProc) waitPoint(point string) {
	p.t.Helper()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(p.err.String(), "fault point "+point+" reached") {
		select {
		case <-p.done:
			p.t.Fatalf("the plugin ended (%v) before reaching fault point %s:\nstdout: %s\nstderr: %s", p.exitErr, point, p.out.String(), p.err.String())
		case <-deadline:
			p.t.Fatalf("the plugin never reached fault point %s:\n%s", point, p.err.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends sig to the plugin and waits for it to end; it returns the exit code (-1 for a
// process killed by the signal).
func (p *faultProc) kill(sig syscall.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		p.t.Fatalf("the plugin did not end after %v:\n%s", sig, p.err.String())
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// faultBackups lists a backup directory with the fault plugin (its key), newest first.
func faultBackups(t *testing.T, dir string) []artifact.Manifest {
	t.Helper()
	cmd := exec.Command(faultPlugin(t), "backup", "ls", "--from", dir, "--format", "json")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+faultConfig)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ls: %v", err)
	}
	var ms []artifact.Manifest
	if err := json.Unmarshal(out, &ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

// faultCmd runs the fault plugin to the end (no fault point) and returns its output.
func faultCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(faultPlugin(t), append([]string{"backup"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+faultConfig)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// checkTarget asserts that nothing was lost on a backup directory: every listed backup's
// artifact matches its manifest, the ones in keep are still listed, and no visible file is
// neither a listed backup nor its manifest except what is allowed (an artifact whose manifest
// a kill prevented, never listed).
func checkTarget(t *testing.T, dir string, keep []string, allowOrphan bool) []artifact.Manifest {
	t.Helper()
	ms := faultBackups(t, dir)
	listed := map[string]bool{}
	for _, m := range ms {
		listed[m.Artifact] = true
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.Artifact)))
		if err != nil {
			t.Errorf("listed backup %s: %v", m.Artifact, err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m.SHA256 || int64(len(b)) != m.Size {
			t.Errorf("listed backup %s does not match its manifest", m.Artifact)
		}
	}
	for _, k := range keep {
		if !listed[k] {
			t.Errorf("the older backup %s is not listed any more", k)
		}
	}
	for _, f := range filesUnder(t, dir) {
		f = filepath.ToSlash(f)
		key := strings.TrimSuffix(strings.TrimSuffix(f, artifact.ManifestSuffix), artifact.ChunksSuffix)
		switch {
		case listed[key]:
		case strings.HasPrefix(filepath.Base(f), ".") && strings.Contains(f, ".tmp-"):
			// a temporary file of a killed process: hidden, never listed
		case allowOrphan && !strings.HasSuffix(f, artifact.ManifestSuffix): // an artifact or chunk list without its manifest
		default:
			t.Errorf("file %s on the target is neither a listed backup nor allowed", f)
		}
	}
	return ms
}

// waitRunning waits until the container runs (a watchdog or recovery may start it).
func waitRunning(t *testing.T, container string) {
	t.Helper()
	eventually(t, 90*time.Second, container+" running", func() error {
		if !listedRunning(t, container) {
			return fmt.Errorf("not running")
		}
		return nil
	})
}

var _ = io.Discard
