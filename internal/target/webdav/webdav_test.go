package webdav

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/targettest"
	xwebdav "golang.org/x/net/webdav"
)

func TestParseWebDAVURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want Config
		str  string
	}{
		{"webdav://nas/dav/backups", Config{Host: "nas", Secure: true, Path: "/dav/backups"}, "webdav://nas/dav/backups"},
		{"webdav://nas:8443/dav/backups/?ca=/etc/ca.pem", Config{Host: "nas:8443", Secure: true, Path: "/dav/backups", CAFile: "/etc/ca.pem"}, "webdav://nas:8443/dav/backups"},
		{"webdav+http://10.0.0.5:8080/dav", Config{Host: "10.0.0.5:8080", Path: "/dav"}, "webdav+http://10.0.0.5:8080/dav"},
		{"webdav://cloud.example/remote.php/dav/files/alice%40x/b%20c", Config{Host: "cloud.example", Secure: true, Path: "/remote.php/dav/files/alice@x/b c"}, "webdav://cloud.example/remote.php/dav/files/alice@x/b%20c"},
		{"webdav://nas", Config{Host: "nas", Secure: true}, "webdav://nas"},
		{"webdav://nas/", Config{Host: "nas", Secure: true}, "webdav://nas"},
		{"webdav://[::1]:8443/a/./b//c", Config{Host: "[::1]:8443", Secure: true, Path: "/a/b/c"}, "webdav://[::1]:8443/a/b/c"},
	} {
		got, err := ParseURL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.url, got, c.want)
		}
		if s := got.String(); s != c.str {
			t.Errorf("%s: String() = %q, want %q", c.url, s, c.str)
		}
	}
}

func TestParseWebDAVURLRefuses(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"webdav://alice:s3cret@nas/dav", "must not hold a user or password"},
		{"webdav://alice@nas/dav", "must not hold a user or password"},
		{"webdav:///dav", "not a valid WebDAV URL"},
		{"webdav://nas:0/b", `port "0" must be a number`},
		{"webdav://nas:99999/b", `port "99999" must be a number`},
		{"webdav://nas/b?port=2", `unknown option "port"`},
		{"webdav://nas/b#x", "not a valid WebDAV URL"},
		{"webdav://nas/b\nc", "control character"},
		{"webdav+http://nas/b?ca=/x", "?ca= is for https"},
		{"webdavs://nas/b", "not a WebDAV URL"},
	} {
		_, err := ParseURL(c.url)
		if err == nil {
			t.Errorf("%q: accepted", c.url)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.url, err, c.want)
		}
		if strings.Contains(c.url, "s3cret") && (strings.Contains(err.Error(), "s3cret") || !errors.Is(err, target.ErrSecretInURL)) {
			t.Errorf("%q: %v: shows the password, or is not ErrSecretInURL", c.url, err)
		}
	}
}

// server is golang.org/x/net/webdav in memory behind basic auth, its requests counted by
// method; wrap, when set, may answer a request instead.
type server struct {
	*httptest.Server
	fs       xwebdav.FileSystem
	requests counts
	wrap     func(w http.ResponseWriter, r *http.Request) bool
}

type counts struct{ propfind, put, move, mkcol atomic.Int64 }

const testUser, testPassword = "alice", "pass-w0rd"

func startServer(t *testing.T, tls bool) *server {
	s := &server{fs: xwebdav.NewMemFS()}
	h := &xwebdav.Handler{FileSystem: s.fs, LockSystem: xwebdav.NewMemLS()}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="dav"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch r.Method {
		case "PROPFIND":
			s.requests.propfind.Add(1)
		case http.MethodPut:
			s.requests.put.Add(1)
		case "MOVE":
			s.requests.move.Add(1)
		case "MKCOL":
			s.requests.mkcol.Add(1)
		}
		if s.wrap != nil && s.wrap(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
	if tls {
		s.Server = httptest.NewTLSServer(handler)
	} else {
		s.Server = httptest.NewServer(handler)
	}
	t.Cleanup(s.Close)
	if err := s.fs.Mkdir(context.Background(), "/dav", 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// target opens a target on the server's collection /dav/PATH with the right password.
func (s *server) target(t *testing.T, path string) *Target {
	t.Helper()
	t.Setenv(EnvUsername, testUser)
	t.Setenv(EnvPassword, testPassword)
	scheme := "webdav+http://"
	if strings.HasPrefix(s.URL, "https") {
		scheme = "webdav://"
	}
	cfg, err := ParseURL(scheme + strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://") + "/dav/" + path)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// files lists every file under /dav, hidden ones too.
func (s *server) files(t *testing.T) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		f, err := s.fs.OpenFile(context.Background(), dir, os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := f.Readdir(-1)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
		for _, fi := range infos {
			if fi.IsDir() {
				walk(dir + "/" + fi.Name())
			} else {
				out = append(out, strings.TrimPrefix(dir+"/"+fi.Name(), "/dav/"))
			}
		}
	}
	walk("/dav")
	return out
}

func TestWebDAVContract(t *testing.T) {
	s := startServer(t, false)
	n := 0
	targettest.Contract(t, func(t *testing.T) target.Target {
		n++
		return s.target(t, fmt.Sprintf("contract/run%d", n))
	})
}

// A Put into an existing collection costs a HEAD, a MKCOL, a PUT, a HEAD and a MOVE; the
// collections above are made only when missing.
func TestWebDAVPutRequests(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "a/b")
	ctx := context.Background()
	if _, err := tg.Put(ctx, "p/q/r/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// /dav/a/b/p/q/r: 5 missing, each asked for, refused (409) but the top one, then made.
	if got := s.requests.mkcol.Load(); got != 9 {
		t.Errorf("MKCOL requests for 5 missing collections: %d, want 9", got)
	}
	s.requests.mkcol.Store(0)
	if _, err := tg.Put(ctx, "p/q/r/y", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	if got := s.requests.mkcol.Load(); got != 1 {
		t.Errorf("MKCOL requests into an existing collection: %d, want 1", got)
	}
	if got := s.requests.put.Load(); got != 2 {
		t.Errorf("PUT requests: %d, want 2", got)
	}
	if files := s.files(t); strings.Join(files, " ") != "a/b/p/q/r/x a/b/p/q/r/y" {
		t.Errorf("on the server: %q", files)
	}
}

// A wrong password fails as authentication, naming the variable, never the password; nothing
// is written.
func TestWebDAVWrongPassword(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "b")
	tg.password = "wrong-one"
	_, err := tg.Put(context.Background(), "x", strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), EnvPassword) ||
		!strings.Contains(err.Error(), `"alice"`) || strings.Contains(err.Error(), "wrong-one") {
		t.Errorf("Put with a wrong password: %v", err)
	}
	t.Setenv(EnvUsername, "")
	t.Setenv(EnvPassword, "")
	anon, err := New(tg.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Get(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "set "+EnvUsername) {
		t.Errorf("Get without credentials: %v", err)
	}
	if files := s.files(t); len(files) != 0 {
		t.Errorf("written: %q", files)
	}
}

// A named target's own variables come before the common ones, the password also from a file.
func TestWebDAVCredentialsEnv(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "c")
	t.Setenv(EnvPassword, "not-this")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_BACKUP_TARGET_BOX_WEBDAV_USERNAME", testUser)
	t.Setenv("DOCKER_BACKUP_TARGET_BOX_WEBDAV_PASSWORD_FILE", file)
	cfg := tg.cfg
	cfg.CredentialsEnv = "DOCKER_BACKUP_TARGET_BOX"
	box, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := box.Put(context.Background(), "x", strings.NewReader("x")); err != nil {
		t.Errorf("Put with the target's own credentials: %v", err)
	}
}

// https with the server's CA given works; without it, the error says to give it.
func TestWebDAVCertificate(t *testing.T) {
	s := startServer(t, true)
	t.Setenv(EnvUsername, testUser)
	t.Setenv(EnvPassword, testPassword)
	host := strings.TrimPrefix(s.URL, "https://")
	cfg, _ := ParseURL("webdav://" + host + "/dav/tls")
	tg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(context.Background(), "x", strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "?ca=FILE") {
		t.Errorf("Put to a server whose CA is unknown: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ = ParseURL("webdav://" + host + "/dav/tls?ca=" + ca)
	if tg, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(context.Background(), "x", strings.NewReader("x")); err != nil {
		t.Errorf("Put with the CA given: %v", err)
	}
}

// The server's statuses say what failed: 507 a full disk, 403 permission; the temporary file
// is deleted.
func TestWebDAVStatuses(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "s")
	for code, want := range map[int]string{http.StatusInsufficientStorage: "no space left", http.StatusForbidden: `does not let the user "alice"`} {
		s.wrap = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut {
				return false
			}
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(code)
			return true
		}
		_, err := tg.Put(context.Background(), "x", bytes.NewReader(targettest.Payload(t, 1<<20)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d: %v, want %q", code, err, want)
		}
	}
	if files := s.files(t); len(files) != 0 {
		t.Errorf("left: %q", files)
	}
}

// A server that answers 503 is asked again; one that cannot be reached fails as the network.
func TestWebDAVRetries(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "r")
	var fails atomic.Int64
	s.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "PROPFIND" && fails.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	if _, err := target.Collect(tg.List(context.Background(), "")); err != nil {
		t.Errorf("List after two 503s: %v", err)
	}
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := tg.Get(ctx, "x"); err == nil || !strings.Contains(err.Error(), "network: cannot reach") {
		t.Errorf("Get from a server that is gone: %v", err)
	}
}

// A pinned object read after it was replaced fails with ErrChanged: the server checks If-Match.
func TestWebDAVPin(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "pin")
	ctx := context.Background()
	if _, err := tg.Put(ctx, "a", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	p, err := tg.Pin(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 5 {
		t.Errorf("pinned size %d", p.Size())
	}
	if err := tg.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := tg.Put(ctx, "a", strings.NewReader("other")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(ctx); !errors.Is(err, target.ErrChanged) {
		t.Errorf("Open of a replaced object: %v, want ErrChanged", err)
	}
	if err := tg.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(ctx); !errors.Is(err, target.ErrChanged) {
		t.Errorf("Open of a deleted object: %v, want ErrChanged", err)
	}
}

// Temporaries of Puts that never finished are swept: by key, and by age under a prefix.
func TestWebDAVRemovesTemporaries(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "tmp")
	ctx := context.Background()
	for _, name := range []string{".x" + target.TempMarker + "1", ".y" + target.TempMarker + "2", "z"} {
		if _, err := tg.upload(ctx, "d/"+name, strings.NewReader("part")); err != nil {
			if err := tg.mkcol(ctx, tg.cfg.Path+"/d", true); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.upload(ctx, "d/"+name, strings.NewReader("part")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tg.RemoveIncomplete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	if files := s.files(t); strings.Join(files, " ") != "tmp/d/.y.tmp-2 tmp/d/z" {
		t.Errorf("after RemoveIncomplete: %q", files)
	}
	if removed, err := tg.RemoveStale(ctx, "d/", time.Now().Add(-time.Hour)); err != nil || len(removed) != 0 {
		t.Errorf("RemoveStale of nothing old enough: %v, %v", removed, err)
	}
	removed, err := tg.RemoveStale(ctx, "d/", time.Now().Add(time.Hour))
	if err != nil || strings.Join(removed, " ") != "d/.y.tmp-2" {
		t.Errorf("RemoveStale: %v, %v", removed, err)
	}
	if files := s.files(t); strings.Join(files, " ") != "tmp/d/z" {
		t.Errorf("after RemoveStale: %q", files)
	}
}

// A listing is decoded as it arrives: a large collection lists without error, in order.
func TestWebDAVLargeListing(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "many")
	ctx := context.Background()
	if err := tg.mkcol(ctx, tg.cfg.Path+"/d", true); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		f, err := s.fs.OpenFile(ctx, fmt.Sprintf("/dav/many/d/k%04d", 299-i), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	keys := targettest.Keys(t, tg, "d/k01")
	if len(keys) != 100 || keys[0] != "d/k0100" || keys[99] != "d/k0199" {
		t.Errorf("List d/k01: %d keys, %v…", len(keys), keys[:min(3, len(keys))])
	}
}

func TestWebDAVRequirement(t *testing.T) {
	tg := &Target{}
	if r := tg.Requirement("write"); !strings.Contains(r, "MKCOL") || !strings.Contains(r, "MOVE") {
		t.Errorf("write: %q", r)
	}
	if tg.Requirement("other") != "" {
		t.Error("an unknown operation has a requirement")
	}
}

// Two Puts of one key racing past the look-up: the MOVE of the second is refused (412) and
// the first object stays.
func TestWebDAVMoveNeverReplaces(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "race")
	ctx := context.Background()
	if _, err := tg.Put(ctx, "d/a", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.upload(ctx, "d/.a"+target.TempMarker+"x", strings.NewReader("second")); err != nil {
		t.Fatal(err)
	}
	if err := tg.move(ctx, "d/.a"+target.TempMarker+"x", "d/a"); !errors.Is(err, target.ErrExist) {
		t.Errorf("MOVE onto an existing key: %v, want ErrExist", err)
	}
	if got := targettest.Read(t, tg, "d/a"); string(got) != "first" {
		t.Errorf("the object was replaced: %q", got)
	}
}

// A server that stops taking an upload's bytes, or stops sending a download's, is given up
// after the stall timeout, as the network; a slow source is not a stall.
func TestWebDAVStall(t *testing.T) {
	s := startServer(t, false)
	tg := s.target(t, "stall")
	tg.stall = 300 * time.Millisecond
	ctx := context.Background()
	// A source slower than the timeout: fine.
	slow := io.MultiReader(strings.NewReader("a"), &sleepyReader{d: time.Second, data: "b"})
	if _, err := tg.Put(ctx, "slow", slow); err != nil {
		t.Errorf("Put of a slow source: %v", err)
	}
	hang := make(chan struct{})
	defer close(hang)
	s.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPut:
			<-hang // takes no byte
			return true
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
			<-hang
			return true
		}
		return false
	}
	start := time.Now()
	_, err := tg.Put(ctx, "stuck", bytes.NewReader(targettest.Payload(t, 64<<20)))
	if err == nil || !strings.Contains(err.Error(), "made no progress") || time.Since(start) > 20*time.Second {
		t.Errorf("Put to a server that takes nothing: %v after %v", err, time.Since(start))
	}
	rc, err := tg.Get(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "made no progress") {
		t.Errorf("Get from a server that stops sending: %v", err)
	}
}

// sleepyReader waits d, then gives data.
type sleepyReader struct {
	d    time.Duration
	data string
	done bool
}

func (s *sleepyReader) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	time.Sleep(s.d)
	s.done = true
	return copy(p, s.data), nil
}

// An upload streams: 256 MiB put through a server that keeps nothing costs the client a few
// MiB of allocations, not the object.
func TestWebDAVPutStreams(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead:
			if !strings.Contains(r.URL.Path, target.TempMarker) {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Length", strconv.FormatInt(got.Load(), 10))
		case http.MethodPut:
			if len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
				t.Errorf("PUT with %v, want chunked", r.TransferEncoding)
			}
			n, _ := io.Copy(io.Discard, r.Body)
			got.Store(n)
			w.WriteHeader(http.StatusCreated)
		default: // MKCOL, MOVE
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	cfg, _ := ParseURL("webdav+http://" + strings.TrimPrefix(srv.URL, "http://") + "/dav")
	tg, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := tg.Put(context.Background(), "p/big", io.LimitReader(zeros{}, size))
	runtime.ReadMemStats(&after)
	if err != nil || n != size || got.Load() != size {
		t.Fatalf("Put = %d, %v; the server got %d", n, err, got.Load())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("a 256 MiB Put allocated %d MiB", alloc>>20)
	} else {
		t.Logf("a 256 MiB Put allocated %d KiB", alloc>>10)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
