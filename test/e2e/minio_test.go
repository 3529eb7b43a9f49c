package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minioServer is a real MinIO server on loopback, private to one test.
type minioServer struct {
	t      *testing.T
	addr   string
	dir    string
	cmd    *exec.Cmd
	user   string
	secret string
	client *minio.Client
}

// minioBinary finds the minio server: on PATH or in GOPATH/bin (test/setup.sh installs it).
func minioBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no minio server binary: run test/setup.sh, which installs it with go install (looked on PATH and at %s)", p)
	}
	return p
}

func startMinio(t *testing.T) *minioServer {
	t.Helper()
	return startMinioOn(t, "127.0.0.1")
}

// startMinioOn runs a MinIO server listening on host (an address of this machine: the
// docker0 gateway makes it reachable from containers).
func startMinioOn(t *testing.T, host string) *minioServer {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := &minioServer{t: t, addr: addr, dir: t.TempDir(), user: "e2e-access", secret: "e2e-secret-" + fmt.Sprint(time.Now().UnixNano())}
	m.start()
	t.Cleanup(m.kill)
	m.client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(m.user, m.secret, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *minioServer) start() {
	m.t.Helper()
	console, _ := net.Listen("tcp", "127.0.0.1:0")
	caddr := console.Addr().String()
	console.Close()
	m.cmd = exec.Command(minioBinary(m.t), "server", m.dir, "--address", m.addr, "--console-address", caddr, "--quiet")
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.user, "MINIO_ROOT_PASSWORD="+m.secret, "MINIO_BROWSER=off")
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	eventually(m.t, time.Minute, "minio live", func() error {
		resp, err := http.Get("http://" + m.addr + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
}

// kill stops the server at once (SIGKILL), as a crash would.
func (m *minioServer) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

func (m *minioServer) bucket(name string) {
	m.t.Helper()
	if err := m.client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		m.t.Fatal(err)
	}
}

// url returns the target URL for bucket/prefix on this server.
func (m *minioServer) url(bucketAndPrefix string) string {
	return "s3://" + bucketAndPrefix + "?endpoint=http://" + m.addr
}

// env is what `docker backup` needs to authenticate.
func (m *minioServer) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.user, "AWS_SECRET_ACCESS_KEY=" + m.secret}
}

// objects lists every key in a bucket.
func (m *minioServer) objects(bucket string) []string {
	m.t.Helper()
	var keys []string
	for o := range m.client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			m.t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// incompleteUploads lists multipart uploads that were neither completed nor aborted.
func (m *minioServer) incompleteUploads(bucket string) []string {
	m.t.Helper()
	var keys []string
	for u := range m.client.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			m.t.Fatal(u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}
