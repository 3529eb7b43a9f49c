package e2e

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var sshdImage = fixtureImage("DOCKER_BACKUP_TEST_SSHD_IMAGE", "sshd")

// sshdServer is OpenSSH's sshd (Debian's package) in a container private to one test, its
// port published on loopback, with one user who logs in with a key the test made.
type sshdServer struct {
	t          *testing.T
	name       string // the container
	addr       string // 127.0.0.1:PORT
	port       string
	user       string
	home       string // the user's login directory in the container
	keys       string // a directory of this host: the keys and files below
	hostKey    ssh.Signer
	clientKey  string // the private key the user logs in with
	knownHosts string // a known_hosts file holding the server's host key
}

// loginKey makes an Ed25519 key, writes it to dir/name as ssh-keygen does, and returns it.
func loginKey(t *testing.T, dir, name string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSSHD runs the sshd fixture; args go to docker run before the image.
func startSSHD(t *testing.T, args ...string) *sshdServer {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := &sshdServer{t: t, name: "e2e-sshd-" + hex.EncodeToString(b), user: "backup", home: "/home/backup", keys: t.TempDir()}
	s.hostKey = loginKey(t, s.keys, "host_key")
	client := loginKey(t, s.keys, "id_ed25519")
	s.clientKey = filepath.Join(s.keys, "id_ed25519")
	run := []string{"run", "-d", "--name", s.name, "-p", "127.0.0.1::22",
		"-e", "SFTP_AUTHORIZED_KEYS=" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.PublicKey()))),
		"-v", s.keys + "/host_key:/run/host_key:ro", "-e", "SSHD_HOST_KEY=/run/host_key"}
	docker(t, append(append(run, args...), sshdImage(t))...)
	t.Cleanup(func() { _, _, _ = dockerCmd(nil, "rm", "-f", "-v", s.name) })
	hostPort := strings.TrimSpace(strings.Split(docker(t, "port", s.name, "22/tcp"), "\n")[0])
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("docker port: %q: %v", hostPort, err)
	}
	s.addr, s.port = net.JoinHostPort(host, port), port
	s.knownHosts = filepath.Join(s.keys, "known_hosts")
	s.writeKnownHosts(s.hostKey.PublicKey())
	eventually(t, time.Minute, "sshd answering", func() error {
		c, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		banner, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
			logs, _, _ := dockerCmd(nil, "logs", "--tail", "20", s.name)
			return fmt.Errorf("banner %q, %v; logs:\n%s", banner, err, logs)
		}
		return nil
	})
	return s
}

// writeKnownHosts makes the known_hosts file hold key as the server's.
func (s *sshdServer) writeKnownHosts(key ssh.PublicKey) {
	s.t.Helper()
	if err := os.WriteFile(s.knownHosts, []byte(knownhosts.Line([]string{s.addr}, key)+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// url is the target URL of path on this server (relative to the login directory; "/path"
// gives the absolute form).
func (s *sshdServer) url(path string) string {
	return "sftp://" + s.user + "@" + s.addr + "/" + path
}

// env is what `docker backup` needs to log in and check the host key.
func (s *sshdServer) env() []string {
	return []string{"DOCKER_BACKUP_SFTP_KEY_FILE=" + s.clientKey, "DOCKER_BACKUP_SFTP_KNOWN_HOSTS=" + s.knownHosts, "SSH_AUTH_SOCK="}
}

// files lists the files under dir (relative to the login directory) on the server, with their
// sizes and inode numbers, the user's .ssh left out: "path size inode" lines, sorted.
func (s *sshdServer) files(dir string) []string {
	s.t.Helper()
	out, stderr, err := dockerCmd(nil, "exec", s.name, "sh", "-c",
		`cd "$1" 2>/dev/null || exit 0; find . -path ./.ssh -prune -o -type f -printf '%P %s %i\n' | LC_ALL=C sort`, "sh", s.home+"/"+dir)
	if err != nil {
		s.t.Fatalf("listing the server's files: %v %s", err, stderr)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(out), " ", "|"))
}

// sha256 is the checksum of a file on the server.
func (s *sshdServer) sha256(file string) string {
	s.t.Helper()
	out := docker(s.t, "exec", s.name, "sha256sum", s.home+"/"+file)
	return strings.Fields(out)[0]
}

// rotateHostKey gives the server a new host key, as an administrator would (sshd re-reads
// its keys on SIGHUP), and returns it.
func (s *sshdServer) rotateHostKey() ssh.Signer {
	s.t.Helper()
	k := loginKey(s.t, s.keys, "host_key.new")
	docker(s.t, "cp", filepath.Join(s.keys, "host_key.new"), s.name+":/etc/ssh/ssh_host_test_key")
	docker(s.t, "exec", s.name, "sh", "-c", "chown root:root /etc/ssh/ssh_host_test_key && chmod 0600 /etc/ssh/ssh_host_test_key && kill -HUP 1")
	want := ssh.FingerprintSHA256(k.PublicKey())
	eventually(s.t, 30*time.Second, "sshd serving the new host key", func() error {
		got, err := s.offeredKey()
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("offers %s", got)
		}
		return nil
	})
	return k
}

// offeredKey is the fingerprint of the host key the server shows (no login is tried).
func (s *sshdServer) offeredKey() (string, error) {
	var got string
	cfg := &ssh.ClientConfig{User: "nobody", Timeout: 5 * time.Second, HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got = ssh.FingerprintSHA256(key)
		return fmt.Errorf("seen")
	}}
	c, err := ssh.Dial("tcp", s.addr, cfg)
	if c != nil {
		c.Close()
	}
	if got == "" {
		return "", err
	}
	return got, nil
}

// killSessions kills the server's sftp-server processes (the user's sessions), by process id.
func (s *sshdServer) killSessions() {
	s.t.Helper()
	docker(s.t, "exec", s.name, "sh", "-c",
		`for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = sftp-server ] && kill -KILL "${d#/proc/}"; done; true`)
}
