package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/target"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker/go-units"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config describes an S3-compatible bucket. It never holds credentials: those come from the
// environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, their _FILE forms) or the standard
// AWS chain (~/.aws/credentials, instance roles).
type Config struct {
	Bucket   string
	Prefix   string // keys are stored under PREFIX/, without leading or trailing slashes
	Endpoint string // host[:port], empty for AWS S3
	Secure   bool   // https (the default) or http
	Region   string
	// PathStyle puts the bucket in the URL path instead of the host name; the default for a
	// custom endpoint.
	PathStyle bool
	CAFile    string // extra CA bundle for a private endpoint's certificate
	Insecure  bool   // skip TLS verification (tests only)
	PartSize  uint64 // multipart part size: memory per upload, and max object = 10,000 parts
	Checksum  string // "crc64nvme" (default), "crc32c" or "none"
	// CredentialsEnv, when set, names an environment prefix read before AWS_*: PREFIX_ACCESS_KEY_ID,
	// PREFIX_SECRET_ACCESS_KEY, PREFIX_SESSION_TOKEN (or their _FILE forms), so that targets on
	// different providers each have their own keys.
	CredentialsEnv string
}

// BufferSize is the one part an upload holds in memory.
func (s *Target) BufferSize() int64 { return int64(s.cfg.PartSize) }

// DefaultPartSize bounds an upload's memory to one buffer of this size; with S3's limit of
// 10,000 parts it allows objects up to 156 GiB. Raise it with ?part-size= for larger backups.
const DefaultPartSize = 16 << 20

// ErrCredentialsInURL refuses an s3:// URL that carries credentials (s3://KEY:SECRET@bucket): a
// URL is shown in errors, status and logs. The error never holds the URL.
var ErrCredentialsInURL = target.SecretInURL("a target URL must not hold credentials (KEY:SECRET@; the URL is not shown): for S3 " +
	"give them in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or in files named by AWS_ACCESS_KEY_ID_FILE and AWS_SECRET_ACCESS_KEY_FILE")

// CheckNoCredentials refuses an s3:// URL with an "@" in it. url.Parse cannot be trusted to
// find the user part: a secret with a "/" or "?" in it ends the host where it should not.
func CheckNoCredentials(raw string) error {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(raw)), "s3://") && strings.Contains(raw, "@") {
		return ErrCredentialsInURL
	}
	return nil
}

// ParseURL reads s3://bucket/prefix?endpoint=...&region=...&path-style=...&ca=...
// &insecure=...&part-size=...&checksum=...
func ParseURL(raw string) (Config, error) {
	if err := CheckNoCredentials(raw); err != nil {
		return Config{}, err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		return Config{}, fmt.Errorf("target %q is not an s3:// URL (s3://bucket/prefix?endpoint=host:port)", raw)
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(path.Clean("/"+u.Path), "/"), Secure: true, Region: "us-east-1",
		PartSize: DefaultPartSize, Checksum: "crc64nvme"}
	if cfg.Bucket == "" {
		return Config{}, fmt.Errorf("target %q names no bucket: s3://BUCKET/prefix", raw)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path-style", "ca", "insecure", "part-size", "checksum":
		default:
			return Config{}, fmt.Errorf("target %q: unknown option %q (known: endpoint, region, path-style, ca, insecure, part-size, checksum)", raw, k)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		if scheme, host, ok := strings.Cut(ep, "://"); ok {
			switch scheme {
			case "http":
				cfg.Secure = false
			case "https":
			default:
				return Config{}, fmt.Errorf("target %q: endpoint scheme %q must be http or https", raw, scheme)
			}
			ep = host
		}
		cfg.Endpoint = strings.TrimSuffix(ep, "/")
		cfg.PathStyle = true
	}
	if r := q.Get("region"); r != "" {
		cfg.Region = r
	}
	if v := q.Get("path-style"); v != "" {
		if cfg.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("target %q: path-style=%q must be true or false", raw, v)
		}
	}
	if v := q.Get("insecure"); v != "" {
		if cfg.Insecure, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("target %q: insecure=%q must be true or false", raw, v)
		}
	}
	cfg.CAFile = q.Get("ca")
	if v := q.Get("part-size"); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n < 5<<20 || n > 5<<30 {
			return Config{}, fmt.Errorf("target %q: part-size=%q must be between 5MiB and 5GiB", raw, v)
		}
		cfg.PartSize = uint64(n)
	}
	if v := q.Get("checksum"); v != "" {
		if v != "crc64nvme" && v != "crc32c" && v != "none" {
			return Config{}, fmt.Errorf("target %q: checksum=%q must be crc64nvme, crc32c or none", raw, v)
		}
		cfg.Checksum = v
	}
	return cfg, nil
}

// Target keeps objects in a bucket under a prefix. Uploads stream with unknown length in parts
// of PartSize (one buffer of that size in memory), carry a full-object checksum, and become
// visible only when complete; a failed upload is aborted so no parts are left behind.
type Target struct {
	cfg    Config
	client *minio.Client
}

// New connects to the bucket described by cfg. No request is made yet.
func New(cfg Config) (*Target, error) {
	creds, err := s3Credentials(cfg.CredentialsEnv)
	if err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	opts := &minio.Options{Creds: creds, Secure: cfg.Secure, Region: cfg.Region, TrailingHeaders: cfg.Checksum != "none"}
	opts.BucketLookup = minio.BucketLookupDNS
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	if cfg.CAFile != "" || cfg.Insecure {
		tr, err := minio.DefaultTransport(cfg.Secure)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure} //nolint:gosec // opt-in, for tests
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading CA bundle %s: %w", cfg.CAFile, err)
			}
			pool, _ := x509.SystemCertPool()
			if pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		opts.Transport = tr
	}
	client, err := minio.New(endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %q: %w", endpoint, err)
	}
	return &Target{cfg: cfg, client: client}, nil
}

// s3Credentials: the environment (PREFIX_* first when prefix is set, then AWS_*; each also
// as a _FILE path, for Docker secrets), then the AWS chain.
func s3Credentials(prefix string) (*credentials.Credentials, error) {
	var sets []string
	if prefix != "" {
		sets = append(sets, prefix+"_")
	}
	sets = append(sets, "AWS_")
	for _, set := range sets {
		id, err := target.EnvOrFile(set + "ACCESS_KEY_ID")
		if err != nil {
			return nil, err
		}
		secret, err := target.EnvOrFile(set + "SECRET_ACCESS_KEY")
		if err != nil {
			return nil, err
		}
		token, err := target.EnvOrFile(set + "SESSION_TOKEN")
		if err != nil {
			return nil, err
		}
		if id != "" && secret != "" {
			return credentials.NewStaticV4(id, secret, token), nil
		}
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	}), nil
}

// String describes the target without secrets.
func (s *Target) String() string {
	u := "s3://" + s.cfg.Bucket
	if s.cfg.Prefix != "" {
		u += "/" + s.cfg.Prefix
	}
	if s.cfg.Endpoint != "" {
		u += " at " + s.cfg.Endpoint
	}
	return u
}

func (s *Target) object(key string) string {
	if s.cfg.Prefix == "" {
		return key
	}
	return s.cfg.Prefix + "/" + key
}

// Put uploads r to key. A failed upload is aborted, with retries, so no parts remain. An
// existing object is never replaced: the upload is conditional (If-None-Match: *), and
// for servers that ignore the condition the key is checked first.
func (s *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return s.put(ctx, key, r, nil)
}

// PutPaced is Put sending at most at lim's rate: the client reports each piece of a part as
// it sends it (its progress reader), and waits there.
func (s *Target) PutPaced(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	return s.put(ctx, key, r, lim.Pacer(ctx))
}

// put is Put; progress, when set, is read with what is sent as it is sent.
func (s *Target) put(ctx context.Context, key string, r io.Reader, progress io.Reader) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.object(key), minio.StatObjectOptions{}); err == nil {
		return 0, fmt.Errorf("%s in %s: %w", key, s, target.ErrExist)
	} else if code := minio.ToErrorResponse(err).Code; code != "NoSuchKey" && code != "NotFound" {
		return 0, fmt.Errorf("uploading %s to %s: %w", key, s, s.explain(err))
	}
	opts := minio.PutObjectOptions{PartSize: s.cfg.PartSize, ContentType: "application/octet-stream", Progress: progress}
	opts.SetMatchETagExcept("*")
	switch s.cfg.Checksum {
	case "crc64nvme":
		opts.Checksum = minio.ChecksumCRC64NVME
	case "crc32c":
		opts.Checksum = minio.ChecksumFullObjectCRC32C
	}
	// A body of known length (a manifest, a chunk list) goes up in one request, without
	// the part buffer an upload of unknown length allocates.
	size := int64(-1)
	if b, ok := r.(interface{ Len() int }); ok && uint64(b.Len()) <= s.cfg.PartSize {
		size = int64(b.Len())
	}
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, s.object(key), r, size, opts)
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidBucketName":
			// Refused before any part was stored: there is nothing to abort.
		case "PreconditionFailed":
			s.abort(ctx, key)
			return 0, fmt.Errorf("%s in %s: %w", key, s, target.ErrExist)
		default:
			s.abort(ctx, key)
		}
		return 0, fmt.Errorf("uploading %s to %s: %w", key, s, s.explain(err))
	}
	return info.Size, nil
}

// Pin fixes the object's version (its ETag): every Open reads that version or fails with
// ErrChanged.
func (s *Target) Pin(ctx context.Context, key string) (target.Pinned, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("%s in %s: %w", key, s, target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", key, s, s.explain(err))
	}
	return &pinnedObject{s: s, key: key, etag: info.ETag, version: info.VersionID, size: info.Size}, nil
}

type pinnedObject struct {
	s                  *Target
	key, etag, version string
	size               int64
}

func (p *pinnedObject) Size() int64  { return p.size }
func (p *pinnedObject) Close() error { return nil }
func (p *pinnedObject) Open(ctx context.Context) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{VersionID: p.version}
	if err := opts.SetMatchETag(p.etag); err != nil {
		return nil, err
	}
	obj, err := p.s.client.GetObject(ctx, p.s.cfg.Bucket, p.s.object(p.key), opts)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", p.key, p.s, p.s.explain(err))
	}
	return &pinnedReader{obj: obj, p: p}, nil
}

// pinnedReader turns the server's "precondition failed" into ErrChanged.
type pinnedReader struct {
	obj *minio.Object
	p   *pinnedObject
}

func (r *pinnedReader) Read(b []byte) (int, error) {
	n, err := r.obj.Read(b)
	if err != nil && err != io.EOF {
		if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
			return n, fmt.Errorf("%s in %s: %w", r.p.key, r.p.s, target.ErrChanged)
		}
		return n, fmt.Errorf("reading %s from %s: %w", r.p.key, r.p.s, r.p.s.explain(err))
	}
	return n, err
}

func (r *pinnedReader) Close() error { return r.obj.Close() }

// abort removes the parts of a failed multipart upload. While the server cannot be reached
// it retries for a minute; an answer from the server, whatever it says, ends it.
func (s *Target) abort(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for delay := 500 * time.Millisecond; ; delay = min(delay*2, 8*time.Second) {
		err := s.client.RemoveIncompleteUpload(ctx, s.cfg.Bucket, s.object(key))
		if err == nil || minio.ToErrorResponse(err).Code != "" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// Get opens the object at key.
func (s *Target) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := target.ValidateKey(key); err != nil {
		return nil, err
	}
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.object(key), minio.StatObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("%s in %s: %w", key, s, target.ErrNotExist)
		}
		return nil, fmt.Errorf("reading %s from %s: %w", key, s, s.explain(err))
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, s, s.explain(err))
	}
	return obj, nil
}

// List returns the objects whose keys start with prefix.
func (s *Target) List(ctx context.Context, prefix string) iter.Seq2[target.Object, error] {
	return func(yield func(target.Object, error) bool) {
		full := s.object(prefix)
		if prefix == "" && s.cfg.Prefix != "" {
			full = s.cfg.Prefix + "/"
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		objects := s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true})
		defer func() {
			for range objects { // cancelled: drained so that the lister ends
			}
		}()
		for o := range objects {
			if o.Err != nil {
				yield(target.Object{}, fmt.Errorf("listing %s: %w", s, s.explain(o.Err)))
				return
			}
			key := o.Key
			if s.cfg.Prefix != "" {
				key = strings.TrimPrefix(key, s.cfg.Prefix+"/")
			}
			if !yield(target.Object{Key: key, Size: o.Size, ModTime: o.LastModified}, nil) {
				return
			}
		}
	}
}

// Delete removes the object at key.
func (s *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.object(key), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("deleting %s from %s: %w", key, s, s.explain(err))
	}
	return nil
}

// explain turns S3 error codes into what to do.
func (s *Target) explain(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist at %s: create it first: %w", s.cfg.Bucket, s.endpointName(), err)
	case "InvalidAccessKeyId":
		return fmt.Errorf("the access key is not known to %s (check AWS_ACCESS_KEY_ID): %w", s.endpointName(), err)
	case "SignatureDoesNotMatch":
		return fmt.Errorf("the secret key is wrong (check AWS_SECRET_ACCESS_KEY): %w", err)
	case "AccessDenied":
		return fmt.Errorf("access denied: the credentials lack a permission on bucket %q: %w", s.cfg.Bucket, err)
	}
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("cannot reach %s: %w", s.endpointName(), err)
	}
	return err
}

func (s *Target) endpointName() string {
	if s.cfg.Endpoint == "" {
		return "AWS S3"
	}
	return s.cfg.Endpoint
}

// Client exposes the S3 client for checks (target check) and tests.
func (s *Target) Client() *minio.Client { return s.client }

// Config returns the target's configuration.
func (s *Target) Config() Config { return s.cfg }

// Requirement is the S3 permission an operation of target.Check needs.
func (s *Target) Requirement(operation string) string {
	perm := map[string]string{"write": "s3:PutObject", "list": "s3:ListBucket", "read": "s3:GetObject", "delete": "s3:DeleteObject"}[operation]
	if perm == "" {
		return ""
	}
	return "the credentials need " + perm + " on this bucket and prefix"
}
