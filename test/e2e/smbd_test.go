package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

var sambaImage = fixtureImage("DOCKER_BACKUP_TEST_SAMBA_IMAGE", "samba")

// smbServer is Samba's smbd (Debian's package) in a container private to one test, its port
// published on loopback, with one user and one share on /share.
type smbServer struct {
	t        *testing.T
	name     string // the container
	addr     string // 127.0.0.1:PORT
	user     string
	password string
	share    string
}

// startSamba runs the samba fixture; args go to docker run before the image.
func startSamba(t *testing.T, args ...string) *smbServer {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := &smbServer{t: t, name: "e2e-smb-" + hex.EncodeToString(b[:3]), user: "backup", password: "pw-" + hex.EncodeToString(b), share: "backup"}
	run := []string{"run", "-d", "--name", s.name, "-p", "127.0.0.1::445", "-e", "SMB_PASSWORD=" + s.password}
	docker(t, append(append(run, args...), sambaImage(t))...)
	t.Cleanup(func() { _, _, _ = dockerCmd(nil, "rm", "-f", "-v", s.name) })
	hostPort := strings.TrimSpace(strings.Split(docker(t, "port", s.name, "445/tcp"), "\n")[0])
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		t.Fatalf("docker port: %q: %v", hostPort, err)
	}
	s.addr = hostPort
	eventually(t, time.Minute, "smbd answering", func() error {
		logs, _, _ := dockerCmd(nil, "logs", s.name)
		if !strings.Contains(logs, "smbd version") {
			return fmt.Errorf("not started; logs:\n%s", logs)
		}
		c, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return s
}

// url is the target URL of path in the share.
func (s *smbServer) url(path string) string {
	return "smb://" + s.user + "@" + s.addr + "/" + s.share + "/" + path
}

// env is what `docker backup` needs to log in.
func (s *smbServer) env() []string {
	return []string{"DOCKER_BACKUP_SMB_PASSWORD=" + s.password}
}

// files lists the files under dir in the share, with their sizes and inode numbers: "path|size|inode",
// sorted.
func (s *smbServer) files(dir string) []string {
	s.t.Helper()
	out, stderr, err := dockerCmd(nil, "exec", s.name, "sh", "-c",
		`cd "$1" 2>/dev/null || exit 0; find . -type f -printf '%P %s %i\n' | LC_ALL=C sort`, "sh", "/share/"+dir)
	if err != nil {
		s.t.Fatalf("listing the server's files: %v %s", err, stderr)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(out), " ", "|"))
}

// sha256 is the checksum of a file in the share.
func (s *smbServer) sha256(file string) string {
	s.t.Helper()
	return strings.Fields(docker(s.t, "exec", s.name, "sha256sum", "/share/"+file))[0]
}

// killSessions kills the smbd processes serving clients (the main one, pid 1, stays), by
// process id.
func (s *smbServer) killSessions() {
	s.t.Helper()
	docker(s.t, "exec", s.name, "sh", "-c",
		`for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] && continue; case "$(cat $d/comm 2>/dev/null)" in smbd|smbd\[*) kill -KILL "$p";; esac; done; true`)
}
