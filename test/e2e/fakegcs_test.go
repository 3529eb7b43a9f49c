package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gcsServer is fake-gcs-server, a Google Cloud Storage emulator speaking the JSON API, on
// loopback and private to one test (test/setup.sh installs it with go install). Its memory
// backend: the filesystem one is twice as slow (50 MB in 2.9 s against 1.4 s), which the upload
// cap's test would measure.
type gcsServer struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
}

func fakeGCSBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("fake-gcs-server"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "fake-gcs-server")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no fake-gcs-server binary: run test/setup.sh, which installs it with go install (looked on PATH and at %s)", p)
	}
	return p
}

func startFakeGCS(t *testing.T) *gcsServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	s := &gcsServer{t: t, addr: addr}
	s.cmd = exec.Command(fakeGCSBinary(t), "-scheme", "http", "-host", "127.0.0.1", "-port", port,
		"-backend", "memory", "-log-level", "warn")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	eventually(t, time.Minute, "fake-gcs-server up", func() error {
		resp, err := http.Get("http://" + addr + "/storage/v1/b")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("buckets: %s", resp.Status)
		}
		return nil
	})
	return s
}

func (s *gcsServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *gcsServer) bucket(name string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := http.Post("http://"+s.addr+"/storage/v1/b?project=e2e", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("creating bucket %s: %s", name, resp.Status)
	}
}

// url is the target URL of bucket/prefix on this server.
func (s *gcsServer) url(bucketAndPrefix string) string {
	return "gs://" + bucketAndPrefix + "?endpoint=http://" + s.addr
}

// env is what `docker backup` needs against the emulator: no credentials.
func (s *gcsServer) env() []string { return []string{"GOOGLE_APPLICATION_CREDENTIALS="} }

// gcsObject is an object as the emulator lists it.
type gcsObject struct {
	Name       string `json:"name"`
	Size       string `json:"size"`
	Generation string `json:"generation"`
	MD5        string `json:"md5Hash"`
}

// objects lists the objects of a bucket under prefix, every page.
func (s *gcsServer) objects(bucket, prefix string) []gcsObject {
	s.t.Helper()
	var all []gcsObject
	q := url.Values{"prefix": {prefix}}
	for {
		resp, err := http.Get("http://" + s.addr + "/storage/v1/b/" + bucket + "/o?" + q.Encode())
		if err != nil {
			s.t.Fatal(err)
		}
		var page struct {
			Items         []gcsObject `json:"items"`
			NextPageToken string      `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" {
			return all
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// names is each object's name|size|generation|md5: equal lines are the same object.
func (s *gcsServer) names(bucket, prefix string) []string {
	var out []string
	for _, o := range s.objects(bucket, prefix) {
		out = append(out, strings.Join([]string{o.Name, o.Size, o.Generation, o.MD5}, "|"))
	}
	return out
}
