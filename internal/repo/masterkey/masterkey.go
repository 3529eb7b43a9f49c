// Package masterkey keeps an encrypted repository's master key: wrapped with age for the
// repository's recipients in its config, and as a key file for the hosts that write it.
package masterkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age/armor"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo/blob"
)

// New makes a random master key.
func New() ([]byte, error) {
	m := make([]byte, blob.MasterKeySize)
	_, err := rand.Read(m)
	return m, err
}

// Wrap encrypts the master key for the recipients (age, armored).
func Wrap(master []byte, to *crypt.Recipients) (string, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := to.Encrypt(aw)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(master); err != nil {
		return "", err
	}
	if err := errors.Join(w.Close(), aw.Close()); err != nil {
		return "", fmt.Errorf("encrypting the master key: %w", err)
	}
	return buf.String(), nil
}

// Unwrap decrypts a wrapped master key with the identities and checks it against check.
func Unwrap(wrapped string, recipients []string, ids *crypt.Identities, check string) ([]byte, error) {
	pr, err := ids.Decrypt(armor.NewReader(strings.NewReader(wrapped)), recipients)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	m, err := io.ReadAll(io.LimitReader(pr, 64))
	if err != nil || !Matches(m, check) {
		return nil, fmt.Errorf("the wrapped master key does not match its key check (damaged config)")
	}
	return m, nil
}

// Check is what proves a master key belongs to a repository without revealing it: hex
// HMAC-SHA256 under a key derived from it.
func Check(master []byte) string {
	h := hmac.New(sha256.New, blob.Derive(master, "key-check"))
	h.Write([]byte("docker-backup repository key check"))
	return hex.EncodeToString(h.Sum(nil))
}

// Matches reports whether master is the key check's.
func Matches(master []byte, check string) bool {
	return len(master) == blob.MasterKeySize && hmac.Equal([]byte(Check(master)), []byte(check))
}

const fileType = "docker-backup-repository-key"

// File is a key file's text: one line naming the repository and the key in hex. The sidecar
// keeps it in its state directory (0600); other hosts that write the repository are given it
// as a secret.
func File(repoID string, master []byte) string {
	return fmt.Sprintf("%s %s %s\n", fileType, repoID, hex.EncodeToString(master))
}

// ParseFile reads a key file's text.
func ParseFile(text string) (repoID string, master []byte, err error) {
	f := strings.Fields(text)
	if len(f) != 3 || f[0] != fileType {
		return "", nil, fmt.Errorf("not a repository key file: want %q followed by the repository ID and the key", fileType)
	}
	master, err = hex.DecodeString(f[2])
	if err != nil || len(master) != blob.MasterKeySize {
		return "", nil, fmt.Errorf("repository key file for %s: the key must be %d bytes in hex", f[1], blob.MasterKeySize)
	}
	return f[1], master, nil
}
