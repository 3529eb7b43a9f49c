package azure

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker-backup/docker-backup/internal/target"
)

func TestParseAzureURL(t *testing.T) {
	cfg, err := ParseURL("azure://backups/site-a//nested/?endpoint=http://127.0.0.1:10000/devstoreaccount1/&block-size=16MiB")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Container: "backups", Prefix: "site-a/nested", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", BlockSize: 16 << 20}
	if cfg != want {
		t.Errorf("ParseURL = %+v\nwant %+v", cfg, want)
	}
	plain, err := ParseURL("azure://my-backups")
	if err != nil || plain.Endpoint != "" || plain.Prefix != "" || plain.BlockSize != DefaultBlockSize {
		t.Errorf("plain URL = %+v, %v", plain, err)
	}
	// A bare host is https: cleartext only when the endpoint says http://.
	if c, _ := ParseURL("azure://bkp?endpoint=acct.blob.core.chinacloudapi.cn"); c.Endpoint != "https://acct.blob.core.chinacloudapi.cn" {
		t.Errorf("bare endpoint = %q", c.Endpoint)
	}
	for raw, wantErr := range map[string]string{
		"azure:///prefix":               "no container",
		"azure://Backups":               "lowercase",
		"azure://a--b":                  "single hyphens",
		"azure://ab":                    "3 to 63",
		"azure://bkp?endpont=x":         `unknown option "endpont"`,
		"azure://bkp?endpoint=ftp://x":  `scheme "ftp"`,
		"azure://bkp?block-size=100KiB": "between 1MiB and 256MiB",
		"s3://bkp":                      "not an azure:// URL",
	} {
		_, err := ParseURL(raw)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseURL(%q) = %v, want an error mentioning %q", raw, err, wantErr)
		}
	}
}

// A key or a SAS token in the URL is refused without showing it.
func TestAzureURLWithSecretIsRefused(t *testing.T) {
	for _, u := range []string{
		"azure://bkp/p?sv=2022-11-02&ss=b&sig=SECRETSIG%2Fx",
		"azure://bkp/p?endpoint=https://acct.blob.core.windows.net/?sv=1%26sig=SECRETSIG",
		"azure://acct:SECRETSIG@bkp/p",
		"azure://bkp?account-key=SECRETSIG",
		"azure://bkp?sas=SECRETSIG",
		"azure://bkp?endpoint=https://x/;AccountKey=SECRETSIG",
	} {
		_, err := ParseURL(u)
		if !errors.Is(err, target.ErrSecretInURL) {
			t.Errorf("%s: %v", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETSIG") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestAzureCredentialsPerTarget(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("b2Zmc2l0ZS1rZXk=\n"), 0o600) // "offsite-key"
	t.Setenv("AZURE_STORAGE_ACCOUNT", "common")
	t.Setenv("AZURE_STORAGE_KEY", "Y29tbW9uLWtleQ==") // "common-key"
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_AZURE_STORAGE_ACCOUNT", "offsite")
	t.Setenv("DOCKER_BACKUP_TARGET_OFFSITE_AZURE_STORAGE_KEY_FILE", keyFile)
	t.Setenv("DOCKER_BACKUP_TARGET_SAS_AZURE_STORAGE_SAS_TOKEN", "?sv=2022-11-02&sp=rwdlc&sig=abc")
	for prefix, want := range map[string][3]string{
		"":                             {"common", "common-key", "AZURE_STORAGE_KEY"},
		"DOCKER_BACKUP_TARGET_OFFSITE": {"offsite", "offsite-key", "DOCKER_BACKUP_TARGET_OFFSITE_AZURE_STORAGE_KEY"},
		"DOCKER_BACKUP_TARGET_NOTHING": {"common", "common-key", "AZURE_STORAGE_KEY"},
		"DOCKER_BACKUP_TARGET_SAS":     {"common", "", "DOCKER_BACKUP_TARGET_SAS_AZURE_STORAGE_SAS_TOKEN"},
	} {
		c, err := loadCredentials(prefix)
		if err != nil || c.account != want[0] || string(c.key) != want[1] || c.from != want[2] {
			t.Errorf("prefix %q: %s/%s from %s, %v; want %v", prefix, c.account, c.key, c.from, err, want)
		}
	}
	if c, _ := loadCredentials("DOCKER_BACKUP_TARGET_SAS"); c.sas != "sv=2022-11-02&sp=rwdlc&sig=abc" {
		t.Errorf("SAS = %q", c.sas)
	}
	t.Setenv("DOCKER_BACKUP_TARGET_BAD_AZURE_STORAGE_KEY", "not base64 SECRET!")
	if _, err := loadCredentials("DOCKER_BACKUP_TARGET_BAD"); err == nil || strings.Contains(err.Error(), "SECRET") ||
		!strings.Contains(err.Error(), "DOCKER_BACKUP_TARGET_BAD_AZURE_STORAGE_KEY") {
		t.Errorf("a key that is not base64: %v", err)
	}
	t.Setenv("AZURE_STORAGE_KEY", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	if _, err := loadCredentials(""); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN") {
		t.Errorf("no credentials: %v", err)
	}
}

// The canonical resource of a SharedKey signature: the account, the escaped path, and the
// query's parameters sorted, lowercase, one a line.
func TestCanonicalResource(t *testing.T) {
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:10000/acct/c/"+escapeBlob("p/ünï b/x")+"?comp=block&blockid=QUJD%2B%3D", nil)
	got := canonicalResource("acct", req.URL)
	want := "/acct/acct/c/p/%C3%BCn%C3%AF%20b/x\nblockid:QUJD+=\ncomp:block"
	if got != want {
		t.Errorf("canonicalResource = %q\nwant %q", got, want)
	}
}

// fake answers each request with the next of its handlers.
func fake(t *testing.T, handlers ...http.HandlerFunc) (*Target, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(handlers) {
			t.Errorf("unexpected request %d: %s %s", i, r.Method, r.URL)
			w.WriteHeader(500)
			return
		}
		handlers[i](w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AZURE_STORAGE_ACCOUNT", "acct")
	t.Setenv("AZURE_STORAGE_KEY", "a2V5")
	tg, err := New(Config{Container: "bk", Endpoint: srv.URL + "/acct", BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return tg, &n
}

func fail(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-ms-error-code", code)
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			io.WriteString(w, "<?xml version=\"1.0\"?><Error><Code>"+code+"</Code><Message>says the server\nRequestId:1</Message></Error>")
		}
	}
}

// The service's refusals say which of authentication, permission or a missing container
// failed, naming the variable and never the key.
func TestAzureErrors(t *testing.T) {
	for code, want := range map[string]string{
		"AuthenticationFailed":            "authentication failed: ",
		"AuthorizationPermissionMismatch": "authentication failed", // an account key may do anything
		"ContainerNotFound":               `container "bk" does not exist`,
	} {
		status := map[string]int{"ContainerNotFound": 404}[code]
		if status == 0 {
			status = 403
		}
		tg, _ := fake(t, fail(status, code))
		err := tg.Delete(context.Background(), "a/b")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "a2V5") {
			t.Errorf("%s: %v, want %q", code, err, want)
		}
		if code != "ContainerNotFound" && !strings.Contains(err.Error(), "AZURE_STORAGE_KEY") {
			t.Errorf("%s: %v does not name the variable", code, err)
		}
	}
	tg, _ := fake(t, fail(403, "AuthorizationPermissionMismatch"))
	tg.creds = credentials{sas: "sv=1&sig=x", from: "AZURE_STORAGE_SAS_TOKEN"}
	if err := tg.Delete(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("a SAS without the permission: %v", err)
	}
	tg, _ = fake(t, fail(404, "BlobNotFound"))
	if _, err := tg.Get(context.Background(), "a"); !errors.Is(err, target.ErrNotExist) {
		t.Errorf("Get of a missing blob: %v", err)
	}
}

// A busy service is asked again, with backoff; a refusal is not.
func TestAzureRetries(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }
	tg, n := fake(t, fail(503, "ServerBusy"), fail(500, "InternalError"), ok)
	if err := tg.Delete(context.Background(), "a"); err != nil || n.Load() != 3 {
		t.Errorf("Delete after two busy answers: %v after %d requests", err, n.Load())
	}
	tg, n = fake(t, fail(403, "AuthenticationFailed"))
	if err := tg.Delete(context.Background(), "a"); err == nil || n.Load() != 1 {
		t.Errorf("a refusal: %v after %d requests", err, n.Load())
	}
}

// A read that breaks resumes from where it stopped, on the same version (If-Match, a range);
// a replaced blob ends it with ErrChanged.
func TestAzureReadResumes(t *testing.T) {
	broken := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "01234")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	rest := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Match") != `"v1"` || r.Header.Get("x-ms-range") != "bytes=5-" {
			t.Errorf("resumed with If-Match %q, range %q", r.Header.Get("If-Match"), r.Header.Get("x-ms-range"))
		}
		w.Header().Set("ETag", `"v1"`) // as Azure answers a range: 206, the version, the range
		w.Header().Set("Content-Range", "bytes 5-9/10")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "56789")
	}
	tg, _ := fake(t, broken, rest)
	rc, err := tg.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); string(b) != "0123456789" || err != nil {
		t.Errorf("resumed read = %q, %v", b, err)
	}
	tg, _ = fake(t, broken, fail(412, "ConditionNotMet"))
	rc, _ = tg.Get(context.Background(), "a")
	if _, err := io.ReadAll(rc); !errors.Is(err, target.ErrChanged) {
		t.Errorf("a read resumed on a replaced blob: %v, want ErrChanged", err)
	}
}
