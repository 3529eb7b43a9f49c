// Package gcs keeps backups in a Google Cloud Storage bucket, through GCS's JSON API over
// net/http: resumable uploads in bounded chunks, conditional on the object not existing
// (ifGenerationMatch=0), reads pinned by generation, paged listings.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/guard"
	"github.com/docker/go-units"
)

// DefaultChunkSize is the one buffer an upload holds: each request of a resumable upload
// sends one chunk. GCS wants chunks in multiples of 256 KiB.
const DefaultChunkSize = 16 << 20

const chunkUnit = 256 << 10

// EmulatorEnv is the variable Google's own libraries read for an emulator's address.
const EmulatorEnv = "STORAGE_EMULATOR_HOST"

// CredentialsVar is the standard variable naming a service-account key file.
const CredentialsVar = "GOOGLE_APPLICATION_CREDENTIALS"

// Config describes a bucket. It never holds credentials: those come from the key file
// GOOGLE_APPLICATION_CREDENTIALS names, or Application Default Credentials.
type Config struct {
	Bucket    string
	Prefix    string // keys are stored under PREFIX/, without leading or trailing slashes
	Endpoint  string // scheme://host[:port] of an emulator; empty for Google
	ChunkSize int64  // bytes per upload request, the memory one upload holds
	// CredentialsEnv, when set, is the prefix of a named target's own variable:
	// PREFIX_GOOGLE_APPLICATION_CREDENTIALS is read before GOOGLE_APPLICATION_CREDENTIALS.
	CredentialsEnv string
}

// ParseURL reads gs://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&chunk-size=16MiB]. Without
// ?endpoint, STORAGE_EMULATOR_HOST (when set) names an emulator.
func ParseURL(raw string) (Config, error) {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(raw)), "gs://") && strings.Contains(raw, "@") {
		return Config{}, target.SecretInURL("a gs:// URL must not hold credentials (the URL is not shown): give a service-account key file in " + CredentialsVar)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "gs" {
		return Config{}, fmt.Errorf("target %q is not a gs:// URL (gs://BUCKET/PREFIX)", raw)
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(path.Clean("/"+u.Path), "/"), ChunkSize: DefaultChunkSize}
	if cfg.Bucket == "" {
		return Config{}, fmt.Errorf("target %q names no bucket: gs://BUCKET/PREFIX", raw)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "chunk-size":
		case "access_token", "key", "token", "credentials":
			return Config{}, target.SecretInURL("a gs:// URL must not hold credentials (the URL is not shown): give a service-account key file in " + CredentialsVar)
		default:
			return Config{}, fmt.Errorf("gs://%s: unknown option %q (known: endpoint, chunk-size)", cfg.Bucket, k)
		}
	}
	ep := q.Get("endpoint")
	if ep == "" {
		ep = os.Getenv(EmulatorEnv)
	}
	if ep != "" {
		if cfg.Endpoint, err = parseEndpoint(ep); err != nil {
			return Config{}, fmt.Errorf("gs://%s: %w", cfg.Bucket, err)
		}
	}
	if v := q.Get("chunk-size"); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n < chunkUnit || n > 1<<30 || n%chunkUnit != 0 {
			return Config{}, fmt.Errorf("gs://%s: chunk-size=%q must be a multiple of 256KiB up to 1GiB", cfg.Bucket, v)
		}
		cfg.ChunkSize = n
	}
	return cfg, nil
}

// parseEndpoint gives scheme://host[:port]; a bare host:port is plain HTTP, as Google's
// libraries take STORAGE_EMULATOR_HOST.
func parseEndpoint(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("endpoint %q must be http://HOST:PORT or https://HOST:PORT", ep)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Target keeps objects in a bucket under a prefix.
type Target struct {
	cfg     Config
	base    string // API root: https://storage.googleapis.com or the emulator
	client  *http.Client
	credVar string // the variable the credentials came from, for errors ("" when none)
	// retryBase is the first wait before a request is sent again; it doubles up to 8 s.
	retryBase time.Duration
	stall     time.Duration // a download making no progress this long is cut
}

// New makes a target of cfg: its credentials are read now (a missing or malformed key file
// is refused here), no request is made to the bucket yet.
func New(cfg Config) (*Target, error) {
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	t := &Target{cfg: cfg, base: "https://storage.googleapis.com", retryBase: 500 * time.Millisecond, stall: guard.StallTimeout}
	if cfg.Endpoint != "" {
		t.base = cfg.Endpoint
	}
	client, credVar, err := httpClient(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	t.client, t.credVar = client, credVar
	return t, nil
}

// String describes the target without secrets.
func (t *Target) String() string {
	u := "gs://" + t.cfg.Bucket
	if t.cfg.Prefix != "" {
		u += "/" + t.cfg.Prefix
	}
	if t.cfg.Endpoint != "" {
		u += " at " + t.cfg.Endpoint
	}
	return u
}

// BufferSize is the one chunk an upload holds in memory.
func (t *Target) BufferSize() int64 { return t.cfg.ChunkSize }

// Config returns the target's configuration.
func (t *Target) Config() Config { return t.cfg }

func (t *Target) object(key string) string {
	if t.cfg.Prefix == "" {
		return key
	}
	return t.cfg.Prefix + "/" + key
}

// objectURL is the JSON API's URL of an object (the name escaped whole, "/" included).
func (t *Target) objectURL(name string, q url.Values) string {
	u := t.base + "/storage/v1/b/" + url.PathEscape(t.cfg.Bucket) + "/o/" + url.PathEscape(name)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Requirement is the IAM permission an operation of target.Check needs.
func (t *Target) Requirement(operation string) string {
	perm := map[string]string{"write": "storage.objects.create", "list": "storage.objects.list",
		"read": "storage.objects.get", "delete": "storage.objects.delete"}[operation]
	if perm == "" {
		return ""
	}
	return "the service account needs " + perm + " on this bucket (e.g. the role Storage Object Admin)"
}

// Delete removes the object at key; a missing object is not an error.
func (t *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	resp, err := t.do(ctx, http.MethodDelete, t.objectURL(t.object(key), nil), nil)
	if err == nil {
		resp.Body.Close()
		return nil
	}
	if isObjectNotFound(err) {
		return nil
	}
	return fmt.Errorf("deleting %s from %s: %w", key, t, t.explain(err))
}

// listPage is one page of a listing, as the JSON API gives it.
type listPage struct {
	Items []struct {
		Name    string    `json:"name"`
		Size    int64     `json:"size,string"`
		Updated time.Time `json:"updated"`
	} `json:"items"`
	NextPageToken string `json:"nextPageToken"`
}

// List yields the objects whose keys start with prefix, a page (at most 1,000) at a time, in
// the lexical order GCS lists names in.
func (t *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		full := t.object(prefix)
		if prefix == "" && t.cfg.Prefix != "" {
			full = t.cfg.Prefix + "/"
		}
		q := url.Values{"prefix": {full}, "maxResults": {"1000"}, "fields": {"items(name,size,updated),nextPageToken"}}
		var check guard.Listing
		for {
			var page listPage
			u := t.base + "/storage/v1/b/" + url.PathEscape(t.cfg.Bucket) + "/o?" + q.Encode()
			if err := t.getJSON(ctx, u, &page); err != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: %w", t, t.explain(err)))
				return
			}
			for _, it := range page.Items {
				if err := check.Name(it.Name); err != nil {
					yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
					return
				}
				key := strings.TrimPrefix(it.Name, t.cfg.Prefix+"/")
				if t.cfg.Prefix == "" {
					key = it.Name
				}
				if !yield(target.Object{Key: key, Size: it.Size, ModTime: it.Updated}, nil) {
					return
				}
			}
			if err := check.Next(page.NextPageToken, len(page.Items)); err != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: %w", t, err))
				return
			}
			if page.NextPageToken == "" {
				return
			}
			q.Set("pageToken", page.NextPageToken)
		}
	}
}

var errNoBucket = errors.New("the bucket does not exist")
