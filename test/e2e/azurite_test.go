package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/azure"
)

// azuriteServer is Microsoft's Azure Storage emulator (its Blob service) on loopback, private
// to one test, with an account and key of its own.
type azuriteServer struct {
	t       *testing.T
	addr    string
	dir     string
	cmd     *exec.Cmd
	account string
	key     string
}

// azuriteBinary finds azurite-blob on PATH (test/setup.sh installs it with npm).
func azuriteBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("azurite-blob")
	if err != nil {
		t.Fatal("no azurite-blob: run test/setup.sh, which installs Azurite with npm")
	}
	return p
}

func startAzurite(t *testing.T) *azuriteServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	key := make([]byte, 64)
	_, _ = rand.Read(key)
	a := &azuriteServer{t: t, addr: addr, dir: t.TempDir(), account: "e2eazure", key: base64.StdEncoding.EncodeToString(key)}
	a.start()
	t.Cleanup(a.kill)
	return a
}

func (a *azuriteServer) start() {
	a.t.Helper()
	host, port, _ := net.SplitHostPort(a.addr)
	a.cmd = exec.Command(azuriteBinary(a.t), "--blobHost", host, "--blobPort", port, "--location", a.dir,
		"--debug", filepath.Join(a.dir, "debug.log"), "--disableProductStyleUrl", "--skipApiVersionCheck")
	a.cmd.Env = append(os.Environ(), "AZURITE_ACCOUNTS="+a.account+":"+a.key)
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	eventually(a.t, time.Minute, "azurite listening", func() error {
		c, err := net.Dial("tcp", a.addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// kill stops the server at once (SIGKILL), as a crash would.
func (a *azuriteServer) kill() {
	if a.cmd != nil && a.cmd.Process != nil {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		_ = a.cmd.Wait()
		a.cmd = nil
	}
}

// endpoint is the account's Blob service URL (Azurite's path-style form).
func (a *azuriteServer) endpoint() string { return "http://" + a.addr + "/" + a.account }

// url is the target URL of container[/prefix] on this server.
func (a *azuriteServer) url(containerAndPrefix string) string {
	return "azure://" + containerAndPrefix + "?endpoint=" + a.endpoint()
}

// env holds the account's name and key, as the plugin reads them.
func (a *azuriteServer) env() []string {
	return []string{"AZURE_STORAGE_ACCOUNT=" + a.account, "AZURE_STORAGE_KEY=" + a.key}
}

// open is a target on container[/prefix] with the account's key.
func (a *azuriteServer) open(containerAndPrefix string) *azure.Target {
	a.t.Helper()
	// Each server's credentials under a prefix of its own: tests run in parallel (no t.Setenv).
	_, port, _ := net.SplitHostPort(a.addr)
	prefix := "E2E_AZURITE_" + port
	for _, e := range a.env() {
		k, v, _ := strings.Cut(e, "=")
		os.Setenv(prefix+"_"+k, v)
	}
	cfg, err := azure.ParseURL(a.url(containerAndPrefix))
	if err != nil {
		a.t.Fatal(err)
	}
	cfg.CredentialsEnv = prefix
	tg, err := azure.New(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	return tg
}

// container creates a container.
func (a *azuriteServer) container(name string) {
	a.t.Helper()
	if err := a.open(name).CreateContainer(context.Background()); err != nil {
		a.t.Fatal(err)
	}
}

// blobs lists the committed blobs of container[/prefix], as "name|size", sorted.
func (a *azuriteServer) blobs(containerAndPrefix string) []string {
	a.t.Helper()
	objs, err := target.Collect(a.open(containerAndPrefix).List(context.Background(), ""))
	if err != nil {
		a.t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s|%d", o.Key, o.Size))
	}
	sort.Strings(out)
	return out
}

// sas is a service SAS token for container with permissions perms (e.g. "rl"), valid for an
// hour, signed with the account key as Azure's tools make one.
func (a *azuriteServer) sas(container, perms string) string {
	a.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(a.key)
	expiry := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05Z")
	const version = "2021-08-06"
	toSign := strings.Join([]string{perms, "", expiry, "/blob/" + a.account + "/" + container, "", "", "https,http", version, "c",
		"", "", "", "", "", "", ""}, "\n")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toSign))
	q := url.Values{"sv": {version}, "sp": {perms}, "se": {expiry}, "sr": {"c"}, "spr": {"https,http"},
		"sig": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	return q.Encode()
}
