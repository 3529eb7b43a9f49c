package artifact

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Signature schemes. New manifests are signed with Ed25519: a host that only restores or
// verifies holds the public key, which cannot sign. HMAC-SHA256 manifests (written before)
// keep verifying with the secret they were made with.
const (
	SchemeEd25519 = "ed25519"
	SchemeHMAC    = "hmac-sha256"
)

// Signature authenticates a manifest. The manifest holds the artifact's size and SHA-256 (and
// its chunk list's), so a valid signature vouches for the artifact's bytes too.
type Signature struct {
	Scheme string `json:"scheme"`
	KeyID  string `json:"key_id"` // names the key (not secret): which key a backup needs
	Value  string `json:"value"`  // hex HMAC, or base64 Ed25519 signature
}

// SigningKey signs the manifests a sidecar or plugin writes, so that a restore can refuse
// what it did not write: whoever can write the target can compute a SHA-256, but not this
// signature. The key file holds a secret of at least 32 bytes (`openssl rand -hex 32`); the
// Ed25519 key pair is derived from it, so a key file made for HMAC signatures signs with
// Ed25519 unchanged and still verifies the HMAC manifests it made.
type SigningKey struct {
	secret []byte
	priv   ed25519.PrivateKey
	pub    PublicKey
	hmacID string
}

// minKeyBytes is the shortest secret accepted.
const minKeyBytes = 32

// NewSigningKey makes a key of a secret of at least 32 bytes.
func NewSigningKey(secret []byte) (*SigningKey, error) {
	if len(secret) < minKeyBytes {
		return nil, fmt.Errorf("a signing key must be at least %d bytes (it is %d): make one with `openssl rand -hex 32`", minKeyBytes, len(secret))
	}
	idSum := sha256.Sum256(append([]byte("docker-backup signing key id\x00"), secret...))
	seed := sha256.Sum256(append([]byte("docker-backup ed25519 seed v1\x00"), secret...))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return &SigningKey{
		secret: bytes.Clone(secret),
		priv:   priv,
		pub:    newPublicKey(priv.Public().(ed25519.PublicKey)),
		hmacID: hex.EncodeToString(idSum[:8]),
	}, nil
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

// ID names the key without revealing it: the ID of its public key.
func (k *SigningKey) ID() string { return k.pub.id }

// Public is the key's public half: what a host that only restores or verifies is given.
func (k *SigningKey) Public() PublicKey { return k.pub }

// Sign sets the manifest's signature (Ed25519).
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
	sig := ed25519.Sign(k.priv, signedMessage(c))
	m.Signature = &Signature{Scheme: SchemeEd25519, KeyID: k.pub.id, Value: base64.StdEncoding.EncodeToString(sig)}
	return nil
}

// signedMessage is what a signature covers: a domain prefix and the canonical manifest.
func signedMessage(canonical []byte) []byte {
	return append([]byte("docker-backup manifest v1\x00"), canonical...)
}

// Tag authenticates a name this key's holder gave to an object of its own (a catalog copy):
// 16 hex digits that whoever cannot read the key cannot make, so that what someone else put
// beside such objects is never taken for one.
func (k *SigningKey) Tag(name string) string {
	h := hmac.New(sha256.New, k.secret)
	h.Write([]byte("docker-backup object tag v1\x00" + name))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (k *SigningKey) mac(b []byte) []byte {
	h := hmac.New(sha256.New, k.secret)
	h.Write(signedMessage(b))
	return h.Sum(nil)
}

// PublicKey verifies Ed25519 manifest signatures. Its text form is one line,
//
//	docker-backup-ed25519 BASE64 [comment]
//
// as `docker backup key` prints it and trusted-key files list them.
type PublicKey struct {
	key ed25519.PublicKey
	id  string
}

// PublicKeyType is the first word of a public key's text form.
const PublicKeyType = "docker-backup-ed25519"

func newPublicKey(k ed25519.PublicKey) PublicKey {
	sum := sha256.Sum256(append([]byte("docker-backup public key id\x00"), k...))
	return PublicKey{key: bytes.Clone(k), id: hex.EncodeToString(sum[:8])}
}

// ID names the key (the key ID manifests and `docker backup run` show).
func (p PublicKey) ID() string { return p.id }

// String is the key's text form (without comment).
func (p PublicKey) String() string {
	return PublicKeyType + " " + base64.StdEncoding.EncodeToString(p.key)
}

// ParsePublicKey reads a public key's text form; a comment after the key is ignored.
func ParsePublicKey(line string) (PublicKey, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != PublicKeyType {
		return PublicKey{}, fmt.Errorf("%q is not a public key: want %q followed by the key in base64, as `docker backup key` prints it", shorten(line), PublicKeyType)
	}
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(b) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("public key %q: the key must be %d bytes in base64", shorten(f[1]), ed25519.PublicKeySize)
	}
	return newPublicKey(b), nil
}

// ParsePublicKeys reads public keys, one a line; empty lines and lines starting with # are
// skipped. source names where the text came from, for errors.
func ParsePublicKeys(text, source string) ([]PublicKey, error) {
	var keys []PublicKey
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", source, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// LoadPublicKeys reads a file of public keys, one a line.
func LoadPublicKeys(file string) ([]PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading trusted keys: %w", err)
	}
	keys, err := ParsePublicKeys(string(b), file)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("trusted keys file %s holds no key (one %s line per key)", file, PublicKeyType)
	}
	return keys, nil
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Errors of Verify.
var (
	// ErrUnsigned: the manifest has no signature.
	ErrUnsigned = errors.New("the manifest is not signed")
	// ErrOtherKey: the manifest is signed with a key this program does not trust.
	ErrOtherKey = errors.New("the manifest is signed with another key")
	// ErrBadSignature: the signature does not match: the manifest was changed after signing.
	ErrBadSignature = errors.New("the manifest's signature does not match its content (tampered with)")
)

// Keyring is what a restore, verify, listing or retention trusts: the host's own signing key
// (its Ed25519 half and, for manifests written before, its HMAC) and public keys of other
// hosts. A nil or empty Keyring trusts nothing.
type Keyring struct {
	own    *SigningKey
	public map[string]PublicKey
}

// NewKeyring trusts own (may be nil) and the public keys.
func NewKeyring(own *SigningKey, public ...PublicKey) *Keyring {
	k := &Keyring{own: own, public: map[string]PublicKey{}}
	if own != nil {
		k.public[own.pub.id] = own.pub
	}
	for _, p := range public {
		k.public[p.id] = p
	}
	return k
}

// IDs lists the IDs of the keys the keyring trusts, for messages.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	var ids []string
	for id := range k.public {
		ids = append(ids, id)
	}
	if k.own != nil {
		ids = append(ids, k.own.hmacID+" (hmac)")
	}
	return ids
}

// Empty reports whether the keyring trusts no key.
func (k *Keyring) Empty() bool { return k == nil || len(k.public) == 0 && k.own == nil }

// Verify checks the manifest's signature, over the manifest as it was read (Unmarshal) or
// signed: nil when a trusted key made it, else ErrUnsigned, ErrOtherKey or ErrBadSignature.
func (k *Keyring) Verify(m *Manifest) error {
	s := m.Signature
	if s == nil {
		return ErrUnsigned
	}
	if m.canonical == nil {
		return ErrBadSignature
	}
	switch s.Scheme {
	case SchemeEd25519:
		pub, ok := k.lookup(s.KeyID)
		if !ok {
			return fmt.Errorf("%w (key %s)", ErrOtherKey, s.KeyID)
		}
		sig, err := base64.StdEncoding.DecodeString(s.Value)
		if err != nil || !ed25519.Verify(pub.key, signedMessage(m.canonical), sig) {
			return ErrBadSignature
		}
		return nil
	case SchemeHMAC:
		if k == nil || k.own == nil || s.KeyID != k.own.hmacID {
			return fmt.Errorf("%w (key %s, an HMAC key: only its secret verifies it)", ErrOtherKey, s.KeyID)
		}
		want, err := hex.DecodeString(s.Value)
		if err != nil || !hmac.Equal(want, k.own.mac(m.canonical)) {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("signature scheme %q is not %s or %s: %w", s.Scheme, SchemeEd25519, SchemeHMAC, ErrBadSignature)
}

func (k *Keyring) lookup(id string) (PublicKey, bool) {
	if k == nil {
		return PublicKey{}, false
	}
	p, ok := k.public[id]
	return p, ok
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

// Environment variables that name trusted public keys, for the plugin and the sidecar alike.
const (
	// EnvTrustedKeys holds public keys, one a line.
	EnvTrustedKeys = "DOCKER_BACKUP_TRUSTED_KEYS"
	// EnvTrustedKeysFile names a file of public keys, one a line.
	EnvTrustedKeysFile = EnvTrustedKeys + "_FILE"
)

// TrustedKeys reads the public keys named by the environment (getenv: EnvTrustedKeys and
// EnvTrustedKeysFile) and by files.
func TrustedKeys(getenv func(string) string, files ...string) ([]PublicKey, error) {
	keys, err := ParsePublicKeys(getenv(EnvTrustedKeys), "$"+EnvTrustedKeys)
	if err != nil {
		return nil, err
	}
	if f := getenv(EnvTrustedKeysFile); f != "" {
		files = append([]string{f}, files...)
	}
	for _, f := range files {
		more, err := LoadPublicKeys(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, more...)
	}
	return keys, nil
}

// SignBytes signs msg (Ed25519) for a purpose other than manifests, such as "repository
// snapshot v1": the signature covers "docker-backup PURPOSE\x00" and msg, so it never passes
// as a manifest's, nor as one of another purpose.
func (k *SigningKey) SignBytes(purpose string, msg []byte) *Signature {
	sig := ed25519.Sign(k.priv, purposeMessage(purpose, msg))
	return &Signature{Scheme: SchemeEd25519, KeyID: k.pub.id, Value: base64.StdEncoding.EncodeToString(sig)}
}

// VerifyBytes checks a signature SignBytes made with a trusted key: nil, or ErrUnsigned,
// ErrOtherKey or ErrBadSignature.
func (k *Keyring) VerifyBytes(purpose string, msg []byte, s *Signature) error {
	if s == nil {
		return ErrUnsigned
	}
	if s.Scheme != SchemeEd25519 {
		return fmt.Errorf("signature scheme %q is not %s: %w", s.Scheme, SchemeEd25519, ErrBadSignature)
	}
	pub, ok := k.lookup(s.KeyID)
	if !ok {
		return fmt.Errorf("%w (key %s)", ErrOtherKey, s.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Value)
	if err != nil || !ed25519.Verify(pub.key, purposeMessage(purpose, msg), sig) {
		return ErrBadSignature
	}
	return nil
}

func purposeMessage(purpose string, msg []byte) []byte {
	if strings.HasPrefix(purpose, "manifest") {
		panic("SignBytes is not for manifests") // a programming error
	}
	return append([]byte("docker-backup "+purpose+"\x00"), msg...)
}
