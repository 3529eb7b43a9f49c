package artifact

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SignatureScheme is the only signature scheme: HMAC-SHA256 over the canonical manifest.
const SignatureScheme = "hmac-sha256"

// Signature authenticates a manifest. The manifest holds the artifact's size and SHA-256, so
// a valid signature vouches for the artifact's bytes too.
type Signature struct {
	Scheme string `json:"scheme"`
	KeyID  string `json:"key_id"` // names the key (not secret): which key a backup needs
	Value  string `json:"value"`  // hex HMAC
}

// SigningKey signs the manifests a sidecar or plugin writes, so that a restore can refuse
// what it did not write: whoever can write the target can compute a SHA-256, but not this
// HMAC. The secret never leaves the machine that holds it; manifests carry only its ID.
type SigningKey struct {
	secret []byte
	id     string
}

// minKeyBytes is the shortest secret accepted.
const minKeyBytes = 32

// NewSigningKey makes a key of a secret of at least 32 bytes.
func NewSigningKey(secret []byte) (*SigningKey, error) {
	if len(secret) < minKeyBytes {
		return nil, fmt.Errorf("a signing key must be at least %d bytes (it is %d): make one with `openssl rand -hex 32`", minKeyBytes, len(secret))
	}
	sum := sha256.Sum256(append([]byte("docker-backup signing key id\x00"), secret...))
	return &SigningKey{secret: bytes.Clone(secret), id: hex.EncodeToString(sum[:8])}, nil
}

// LoadSigningKey reads a key file: its content, without surrounding white space, is the
// secret (any text or bytes of at least 32 bytes, such as the output of `openssl rand -hex 32`).
func LoadSigningKey(file string) (*SigningKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	k, err := NewSigningKey(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	return k, nil
}

// LoadOrCreateSigningKey reads the key file, or creates it (mode 0600, 32 random bytes as
// hex, its directory 0700) when it does not exist. created reports which.
func LoadOrCreateSigningKey(file string) (k *SigningKey, created bool, err error) {
	k, err = LoadSigningKey(file)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, false, fmt.Errorf("creating the signing key's directory: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, err
	}
	text := hex.EncodeToString(secret) + "\n"
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // made by another process meanwhile
		k, err = LoadSigningKey(file)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating the signing key: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("writing the signing key: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return nil, false, fmt.Errorf("writing the signing key: %w", err)
	}
	k, err = NewSigningKey([]byte(strings.TrimSpace(text)))
	return k, true, err
}

// ID names the key without revealing it.
func (k *SigningKey) ID() string { return k.id }

// Sign sets the manifest's signature.
func (k *SigningKey) Sign(m *Manifest) error {
	m.Signature = nil
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	c, err := canonicalize(b)
	if err != nil {
		return err
	}
	m.canonical = c
	m.Signature = &Signature{Scheme: SignatureScheme, KeyID: k.id, Value: hex.EncodeToString(k.mac(c))}
	return nil
}

func (k *SigningKey) mac(b []byte) []byte {
	h := hmac.New(sha256.New, k.secret)
	h.Write([]byte("docker-backup manifest v1\x00"))
	h.Write(b)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	// ErrUnsigned: the manifest has no signature.
	ErrUnsigned = errors.New("the manifest is not signed")
	// ErrOtherKey: the manifest is signed with a key this program does not have.
	ErrOtherKey = errors.New("the manifest is signed with another key")
	// ErrBadSignature: the signature does not match: the manifest was changed after signing.
	ErrBadSignature = errors.New("the manifest's signature does not match its content (tampered with)")
)

// Verify checks the manifest's signature against the key, over the manifest as it was read
// (Unmarshal) or signed. A nil key verifies nothing and reports ErrUnsigned or ErrOtherKey.
func (k *SigningKey) Verify(m *Manifest) error {
	s := m.Signature
	switch {
	case s == nil:
		return ErrUnsigned
	case s.Scheme != SignatureScheme:
		return fmt.Errorf("signature scheme %q is not %s: %w", s.Scheme, SignatureScheme, ErrBadSignature)
	case k == nil || s.KeyID != k.id:
		return fmt.Errorf("%w (key %s)", ErrOtherKey, s.KeyID)
	}
	want, err := hex.DecodeString(s.Value)
	if err != nil || m.canonical == nil {
		return ErrBadSignature
	}
	if !hmac.Equal(want, k.mac(m.canonical)) {
		return ErrBadSignature
	}
	return nil
}

// canonicalize gives the bytes a signature covers: the manifest's JSON without its
// "signature" member, re-encoded compactly with sorted keys and numbers kept as written, so
// that it does not depend on white space, member order or fields this build does not know.
func canonicalize(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	delete(v, "signature")
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return out, nil
}
