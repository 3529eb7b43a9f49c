package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var webdavImage = fixtureImage("DOCKER_BACKUP_TEST_WEBDAV_IMAGE", "webdav")

// webdavServer is Apache httpd with mod_dav (Debian's package) in a container private to one
// test, its http and https ports published on loopback, with one basic-auth user whose
// password the test made. The DAV collection /srv/dav is served as /dav/.
type webdavServer struct {
	t        *testing.T
	name     string // the container
	http     string // 127.0.0.1:PORT
	https    string
	user     string
	password string
	ca       string // the server's self-signed certificate, a CA file for ?ca=
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost and its key to dir.
func selfSigned(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "e2e webdav"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startWebDAV runs the webdav fixture; args go to docker run before the image.
func startWebDAV(t *testing.T, args ...string) *webdavServer {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	dir := t.TempDir()
	selfSigned(t, dir)
	s := &webdavServer{t: t, name: "e2e-webdav-" + hex.EncodeToString(b[:3]), user: "backup", password: "pw-" + hex.EncodeToString(b[3:]),
		ca: filepath.Join(dir, "cert.pem")}
	run := []string{"run", "-d", "--name", s.name, "-p", "127.0.0.1::80", "-p", "127.0.0.1::443",
		"-e", "WEBDAV_PASSWORD=" + s.password, "-v", dir + ":/run/tls:ro",
		"-e", "WEBDAV_CERT=/run/tls/cert.pem", "-e", "WEBDAV_KEY=/run/tls/key.pem"}
	docker(t, append(append(run, args...), webdavImage(t))...)
	t.Cleanup(func() { _, _, _ = dockerCmd(nil, "rm", "-f", "-v", s.name) })
	s.http = s.port("80/tcp")
	s.https = s.port("443/tcp")
	eventually(t, time.Minute, "Apache answering", func() error {
		resp, err := http.Get("http://" + s.http + "/dav/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			logs, _, _ := dockerCmd(nil, "logs", "--tail", "20", s.name)
			return fmt.Errorf("GET /dav/ without a password: %s; logs:\n%s", resp.Status, logs)
		}
		return nil
	})
	return s
}

func (s *webdavServer) port(p string) string {
	s.t.Helper()
	hostPort := strings.TrimSpace(strings.Split(docker(s.t, "port", s.name, p), "\n")[0])
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		s.t.Fatalf("docker port %s: %q: %v", p, hostPort, err)
	}
	return hostPort
}

// url is the cleartext target URL of path under the DAV collection.
func (s *webdavServer) url(path string) string { return "webdav+http://" + s.http + "/dav/" + path }

// tlsURL is the https target URL of path, the server's CA given when ca is true.
func (s *webdavServer) tlsURL(path string, ca bool) string {
	u := "webdav://" + s.https + "/dav/" + path
	if ca {
		u += "?ca=" + s.ca
	}
	return u
}

// env is what `docker backup` needs to log in.
func (s *webdavServer) env() []string {
	return []string{"DOCKER_BACKUP_WEBDAV_USERNAME=" + s.user, "DOCKER_BACKUP_WEBDAV_PASSWORD=" + s.password}
}

// files lists the files under dir of the DAV collection on the server, hidden ones too, with
// their sizes and inode numbers: "path|size|inode", sorted.
func (s *webdavServer) files(dir string) []string {
	s.t.Helper()
	out, stderr, err := dockerCmd(nil, "exec", s.name, "sh", "-c",
		`cd "$1" 2>/dev/null || exit 0; find . -type f -printf '%P %s %i\n' | LC_ALL=C sort`, "sh", "/srv/dav/"+dir)
	if err != nil {
		s.t.Fatalf("listing the server's files: %v %s", err, stderr)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(out), " ", "|"))
}

// sha256 is the checksum of a file on the server.
func (s *webdavServer) sha256(file string) string {
	s.t.Helper()
	return strings.Fields(docker(s.t, "exec", s.name, "sha256sum", "/srv/dav/"+file))[0]
}
