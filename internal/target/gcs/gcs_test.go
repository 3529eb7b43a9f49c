package gcs

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
)

func TestParseGCSURL(t *testing.T) {
	t.Setenv(EmulatorEnv, "")
	cfg, err := ParseURL("gs://backups/site-a//nested/?endpoint=http://127.0.0.1:4443&chunk-size=8MiB")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: "backups", Prefix: "site-a/nested", Endpoint: "http://127.0.0.1:4443", ChunkSize: 8 << 20}
	if cfg != want {
		t.Errorf("ParseURL = %+v\nwant %+v", cfg, want)
	}
	if g, err := ParseURL("gs://my-backups"); err != nil || g.Endpoint != "" || g.Prefix != "" || g.ChunkSize != DefaultChunkSize {
		t.Errorf("plain URL = %+v, %v", g, err)
	}
	t.Setenv(EmulatorEnv, "localhost:9023")
	if g, _ := ParseURL("gs://b/p"); g.Endpoint != "http://localhost:9023" {
		t.Errorf("with %s: endpoint %q", EmulatorEnv, g.Endpoint)
	}
	if esc, _ := ParseURL("gs://b/../../escape"); esc.Prefix != "escape" {
		t.Errorf("prefix with .. = %q", esc.Prefix)
	}
	for raw, wantErr := range map[string]string{
		"gs:///prefix":               "names no bucket",
		"gs://b?endpont=x":           `unknown option "endpont"`,
		"gs://b?endpoint=ftp://x":    "must be http://HOST:PORT",
		"gs://b?chunk-size=100KiB":   "multiple of 256KiB",
		"gs://b?chunk-size=1000000":  "multiple of 256KiB",
		"s3://b":                     "not a gs:// URL",
		"gs://b/p?chunk-size=256KiB": "",
	} {
		_, err := ParseURL(raw)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("ParseURL(%q) = %v", raw, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("ParseURL(%q) = %v, want an error mentioning %q", raw, err, wantErr)
		}
	}
}

// A secret in the URL is refused without showing it.
func TestGCSURLWithSecretIsRefused(t *testing.T) {
	for _, u := range []string{"gs://ya29.SECRETTOKEN@bucket/p", "gs://bucket/p?access_token=ya29.SECRETTOKEN", "gs://b?key=SECRETTOKEN"} {
		_, err := ParseURL(u)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("%s: %v", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

// serviceAccountKey writes a service-account key file whose token service is tokenURI.
func serviceAccountKey(t *testing.T, tokenURI string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "p", "private_key_id": "kid",
		"private_key": pemKey, "client_email": "backup@p.iam.gserviceaccount.com", "token_uri": tokenURI})
	f := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// The key file comes from the named target's own variable first, then the standard one;
// a missing, malformed or wrong kind of file is refused naming the variable.
func TestGCSCredentialFiles(t *testing.T) {
	good := serviceAccountKey(t, "http://127.0.0.1:1/token")
	dir := t.TempDir()
	malformed := filepath.Join(dir, "malformed.json")
	os.WriteFile(malformed, []byte("-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n"), 0o600)
	wrongType := filepath.Join(dir, "wrong.json")
	os.WriteFile(wrongType, []byte(`{"type":"external_account_x","secret":"SECRETMATERIAL"}`), 0o600)
	t.Setenv(CredentialsVar, good)
	cfg := Config{Bucket: "b", CredentialsEnv: "DOCKER_BACKUP_TARGET_OFFSITE"}
	if _, v, err := httpClient(context.Background(), cfg); err != nil || v != CredentialsVar {
		t.Errorf("no own variable: from %q, %v; want %s", v, err, CredentialsVar)
	}
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_"+CredentialsVar, good)
	if _, v, err := httpClient(context.Background(), cfg); err != nil || v != "DOCKER_BACKUP_TARGET_OFFSITE_"+CredentialsVar {
		t.Errorf("own variable: from %q, %v", v, err)
	}
	for file, want := range map[string]string{
		filepath.Join(dir, "missing.json"): "reading the key file " + CredentialsVar + " names",
		malformed:                          "is not a JSON key file",
		wrongType:                          "not a service-account key",
	} {
		t.Setenv(CredentialsVar, file)
		_, err := New(Config{Bucket: "b"})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), CredentialsVar) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", filepath.Base(file), err, CredentialsVar, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETMATERIAL") {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	// Against an emulator no credentials are needed.
	t.Setenv(CredentialsVar, "")
	if _, v, err := httpClient(context.Background(), Config{Bucket: "b", Endpoint: "http://127.0.0.1:1"}); err != nil || v != "" {
		t.Errorf("emulator without credentials: %q, %v", v, err)
	}
}

// A key the token service refuses (invalid_grant) is an authentication error naming the
// variable, not retried, and shows neither key nor token.
func TestGCSRefusedKey(t *testing.T) {
	var tokenCalls, apiCalls atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	defer tokens.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiCalls.Add(1) }))
	defer api.Close()
	t.Setenv(CredentialsVar, serviceAccountKey(t, tokens.URL))
	tg, err := New(Config{Bucket: "b", Endpoint: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.Put(context.Background(), "p/a", strings.NewReader("data"))
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), CredentialsVar) ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("Put with a refused key = %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error shows the key: %v", err)
	}
	if tokenCalls.Load() != 1 || apiCalls.Load() != 0 {
		t.Errorf("%d token requests, %d API requests; want 1 and 0 (no retry of a refused key)", tokenCalls.Load(), apiCalls.Load())
	}
}

// jsonError answers as the JSON API does.
func jsonError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"reason":%q,"message":%q}]}}`, status, msg, reason, msg)
}

// Each refusal says what failed; 5xx and 429 are retried, then succeed.
func TestGCSErrors(t *testing.T) {
	t.Setenv(CredentialsVar, "")
	var mode atomic.Value
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch mode.Load().(string) {
		case "401":
			jsonError(w, 401, "required", "Anonymous caller does not have storage.objects.get access.")
		case "403":
			jsonError(w, 403, "forbidden", "backup@p.iam.gserviceaccount.com does not have storage.objects.list access.")
		case "nobucket":
			jsonError(w, 404, "notFound", "The specified bucket does not exist.")
		case "noobject":
			jsonError(w, 404, "notFound", "No such object: b/p/a")
		case "flaky":
			if n < 3 {
				jsonError(w, 503, "backendError", "Backend Error")
				return
			}
			io.WriteString(w, "content")
		}
	}))
	defer srv.Close()
	tg, err := New(Config{Bucket: "b", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tg.retryBase = time.Millisecond
	ctx := context.Background()
	for m, want := range map[string]string{"401": "authentication failed", "403": "permission denied on bucket \"b\"",
		"nobucket": "create it first"} {
		mode.Store(m)
		_, err := tg.Get(ctx, "p/a")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Get = %v, want %q", m, err, want)
		}
		if err := tg.Delete(ctx, "p/a"); err == nil {
			t.Errorf("%s: Delete succeeded", m)
		}
	}
	mode.Store("noobject")
	if _, err := tg.Get(ctx, "p/a"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("a missing object: %v", err)
	}
	if err := tg.Delete(ctx, "p/a"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	mode.Store("flaky")
	calls.Store(0)
	rc, err := tg.Get(ctx, "p/a")
	if err != nil {
		t.Fatalf("Get through two 503s: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "content" || calls.Load() != 3 {
		t.Errorf("Get = %q after %d requests", b, calls.Load())
	}
	mode.Store("x")
	srv.Close()
	if _, err := tg.Get(ctx, "p/a"); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("a server gone: %v", err)
	}
}

func TestGCSStringAndRequirement(t *testing.T) {
	tg := &Target{cfg: Config{Bucket: "b", Prefix: "host/x", Endpoint: "http://127.0.0.1:4443"}}
	if got := tg.String(); got != "gs://b/host/x at http://127.0.0.1:4443" {
		t.Errorf("String = %q", got)
	}
	if got := tg.object("p/s/a.zst"); got != "host/x/p/s/a.zst" {
		t.Errorf("object = %q", got)
	}
	if !strings.Contains(tg.objectURL("host/x/a b", nil), "/o/host%2Fx%2Fa%20b") {
		t.Errorf("objectURL = %q", tg.objectURL("host/x/a b", nil))
	}
	if !strings.Contains(tg.Requirement("write"), "storage.objects.create") || tg.Requirement("other") != "" {
		t.Errorf("Requirement(write) = %q", tg.Requirement("write"))
	}
}
