// Package azure keeps backups in an Azure Blob Storage container, through the Blob service's
// REST API: uploads are staged blocks committed by a conditional Put Block List, so a blob is
// listable only once complete and an existing one is never replaced.
package azure

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/docker-backup/docker-backup/internal/bandwidth"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker-backup/docker-backup/internal/target/guard"
	"github.com/docker/go-units"
)

// Target keeps objects as block blobs in a container, under a prefix.
type Target struct {
	cfg      Config
	creds    credentials
	endpoint string // the Blob service's base URL, without a trailing slash
	client   *http.Client
	log      *slog.Logger
	stall    time.Duration // a download making no progress this long is cut
}

// New makes a target of cfg with the credentials of the environment. No request is made yet.
func New(cfg Config) (*Target, error) {
	creds, err := loadCredentials(cfg.CredentialsEnv)
	if err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" && creds.endpoint != "" {
		if endpoint, err = checkEndpoint(creds.endpoint); err != nil {
			return nil, fmt.Errorf("AZURE_STORAGE_ENDPOINT: %w", err)
		}
	}
	if endpoint == "" {
		if creds.account == "" {
			return nil, fmt.Errorf("azure://%s: set AZURE_STORAGE_ACCOUNT (the storage account's name) or an endpoint", cfg.Container)
		}
		endpoint = "https://" + creds.account + ".blob.core.windows.net"
	}
	return &Target{cfg: cfg, creds: creds, endpoint: endpoint, client: newHTTPClient(), log: slog.Default(),
		stall: guard.StallTimeout}, nil
}

// String describes the target without secrets.
func (t *Target) String() string {
	s := "azure://" + t.cfg.Container
	if t.cfg.Prefix != "" {
		s += "/" + t.cfg.Prefix
	}
	return s + " at " + t.endpoint
}

// BufferSize is the one block an upload holds in memory.
func (t *Target) BufferSize() int64 { return t.cfg.BlockSize }

func (t *Target) blob(key string) string {
	if t.cfg.Prefix == "" {
		return key
	}
	return t.cfg.Prefix + "/" + key
}

// Put uploads r to key in blocks of BlockSize and commits them only once r is read whole, on
// the condition that no blob of that name exists (If-None-Match: *).
func (t *Target) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return t.put(ctx, key, r, nil)
}

// PutPaced is Put sending at most at lim's rate: each block is paced as it is sent, not as it
// is read into the buffer.
func (t *Target) PutPaced(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	return t.put(ctx, key, r, lim)
}

func (t *Target) put(ctx context.Context, key string, r io.Reader, lim *bandwidth.Limiter) (int64, error) {
	if err := target.ValidateKey(key); err != nil {
		return 0, err
	}
	// Refused early, before gigabytes are sent: the commit's condition still decides a race.
	if _, err := t.properties(ctx, key); err == nil {
		return 0, fmt.Errorf("%s in %s: %w", key, t, target.ErrExist)
	} else if !missing(err) {
		return 0, fmt.Errorf("uploading %s to %s: %w", key, t, t.explain(err))
	}
	// A body of known length smaller than a block (a manifest, a chunk list) gets a buffer of
	// its size, not a block's.
	size := t.cfg.BlockSize
	if b, ok := r.(interface{ Len() int }); ok && int64(b.Len()) < size {
		size = int64(b.Len()) + 1
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF { // one request holds it whole
		return int64(n), t.commit(ctx, key, request{method: http.MethodPut, body: buf[:n], pace: lim,
			header: http.Header{"X-Ms-Blob-Type": {"BlockBlob"}, "Content-Md5": {contentMD5(buf[:n])}}})
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s for %s: %w", key, t, err)
	}
	var ids []string
	total := int64(0)
	session := make([]byte, 8)
	_, _ = rand.Read(session)
	for n > 0 {
		if len(ids) == maxBlocks {
			return 0, fmt.Errorf("uploading %s to %s: a blob holds at most %d blocks of %s: raise ?block-size= for backups this large",
				key, t, maxBlocks, units.BytesSize(float64(t.cfg.BlockSize)))
		}
		// Every block of a blob has an ID of the same length: this upload's and its number.
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s%08d", hex.EncodeToString(session), len(ids)))
		q := url.Values{"comp": {"block"}, "blockid": {id}}
		resp, err := t.do(ctx, request{method: http.MethodPut, blob: t.blob(key), query: q, body: buf[:n], pace: lim,
			header: http.Header{"Content-Md5": {contentMD5(buf[:n])}}})
		if err != nil {
			return 0, fmt.Errorf("uploading %s to %s: %w", key, t, t.explain(err))
		}
		resp.Body.Close()
		ids, total = append(ids, id), total+int64(n)
		if n, err = io.ReadFull(r, buf); err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("reading %s for %s: %w", key, t, err)
		}
	}
	return total, t.commit(ctx, key, blockList(ids))
}

// maxBlocks is how many blocks Azure lets a blob have.
const maxBlocks = 50000

// contentMD5 is the Content-MD5 of a request's body: the service checks it and refuses a body
// damaged on the way (Md5Mismatch) rather than store it.
func contentMD5(b []byte) string {
	sum := md5.Sum(b) //nolint:gosec // an integrity check asked by the service, not a security one
	return base64.StdEncoding.EncodeToString(sum[:])
}

// blockList is the Put Block List request that commits ids, in order.
func blockList(ids []string) request {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><BlockList>`)
	for _, id := range ids {
		b.WriteString("<Latest>" + id + "</Latest>")
	}
	b.WriteString("</BlockList>")
	return request{method: http.MethodPut, query: url.Values{"comp": {"blocklist"}}, body: []byte(b.String()),
		header: http.Header{"Content-Type": {"application/xml"}}}
}

// commit sends r (a Put Blob or a Put Block List) on the condition that key has no blob yet.
func (t *Target) commit(ctx context.Context, key string, r request) error {
	r.blob = t.blob(key)
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("If-None-Match", "*")
	r.header.Set("X-Ms-Blob-Content-Type", "application/octet-stream")
	resp, err := t.do(ctx, r)
	if err != nil {
		if status, code := errorCode(err); status == 412 || code == "BlobAlreadyExists" {
			return fmt.Errorf("%s in %s: %w", key, t, target.ErrExist)
		}
		return fmt.Errorf("uploading %s to %s: %w", key, t, t.explain(err))
	}
	resp.Body.Close()
	return nil
}

// Delete removes the blob at key (and any snapshots of it); a missing blob is not an error.
func (t *Target) Delete(ctx context.Context, key string) error {
	if err := target.ValidateKey(key); err != nil {
		return err
	}
	resp, err := t.do(ctx, request{method: http.MethodDelete, blob: t.blob(key),
		header: http.Header{"X-Ms-Delete-Snapshots": {"include"}}})
	if err != nil {
		if _, code := errorCode(err); code == "BlobNotFound" {
			return nil
		}
		return fmt.Errorf("deleting %s from %s: %w", key, t, t.explain(err))
	}
	resp.Body.Close()
	return nil
}

// explain says what to do about the service's refusals: which of authentication, permission,
// a missing container or the network failed. It never shows a secret.
func (t *Target) explain(err error) error {
	status, code := errorCode(err)
	switch {
	// An account key may do anything: its refusal is of the key itself (or of this client's
	// address, by the account's network rules). Azurite says AuthorizationFailure for a wrong key.
	case code == "AuthenticationFailed" || code == "InvalidAuthenticationInfo" || (status == 403 && t.creds.key != nil):
		return fmt.Errorf("authentication failed: %s refused the credentials of %s (check %s; or the account's network rules refuse this address): %w",
			t.endpoint, t.account(), t.creds.from, err)
	case code == "AuthorizationPermissionMismatch":
		return fmt.Errorf("permission denied: the SAS token of %s lacks a permission on container %q: %w", t.creds.from, t.cfg.Container, err)
	case status == 403:
		return fmt.Errorf("permission denied: the SAS token of %s is not valid for container %q (expired, for another account or container, or lacking a permission): %w",
			t.creds.from, t.cfg.Container, err)
	case code == "ContainerNotFound":
		return fmt.Errorf("container %q does not exist at %s: create it first (az storage container create --name %s): %w", t.cfg.Container, t.endpoint, t.cfg.Container, err)
	}
	return err
}

func (t *Target) account() string {
	if t.creds.account == "" {
		return "the SAS token"
	}
	return "account " + t.creds.account
}

// Requirement is what the credentials need for an operation of target.Check.
func (t *Target) Requirement(operation string) string {
	perm := map[string]string{"write": "create and write (SAS permissions c and w)", "list": "list (SAS permission l)",
		"read": "read (SAS permission r)", "delete": "delete (SAS permission d)"}[operation]
	if perm == "" {
		return ""
	}
	return "the credentials need to " + perm + " blobs in container " + t.cfg.Container +
		" (with Microsoft Entra roles: Storage Blob Data Contributor)"
}

// listing is one page of List Blobs.
type listing struct {
	Blobs []struct {
		Name       string `xml:"Name"`
		Properties struct {
			LastModified  string `xml:"Last-Modified"`
			ContentLength int64  `xml:"Content-Length"`
		} `xml:"Properties"`
	} `xml:"Blobs>Blob"`
	NextMarker string `xml:"NextMarker"`
}

// pageSize is how many blobs one page of a listing holds.
const pageSize = 1000

func (t *Target) page(ctx context.Context, prefix, marker string) (listing, error) {
	q := url.Values{"restype": {"container"}, "comp": {"list"}, "maxresults": {fmt.Sprint(pageSize)}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if marker != "" {
		q.Set("marker", marker)
	}
	var l listing
	g := guard.NewDownload(ctx, t.stall)
	resp, err := t.do(g.Context(), request{method: http.MethodGet, query: q})
	if err != nil {
		g.Release()
		return l, t.explain(err)
	}
	body := g.Body(resp.Body)
	defer body.Close()
	if err := xml.NewDecoder(guard.Page(body)).Decode(&l); err != nil {
		return l, fmt.Errorf("reading a page of the listing: %w", err)
	}
	return l, nil
}

// CreateContainer creates the target's container; one that exists already is not an error.
func (t *Target) CreateContainer(ctx context.Context) error {
	resp, err := t.do(ctx, request{method: http.MethodPut, query: url.Values{"restype": {"container"}}})
	if err != nil {
		if _, code := errorCode(err); code == "ContainerAlreadyExists" {
			return nil
		}
		return fmt.Errorf("creating container %q at %s: %w", t.cfg.Container, t.endpoint, t.explain(err))
	}
	resp.Body.Close()
	return nil
}
