// Package crypt encrypts artifacts in the stream with age (filippo.io/age): after
// compression, before the checksum, so that a target holds only ciphertext and its checksum
// and listings, tamper checks and retention need no key. Recipients are age public keys
// (X25519 or post-quantum hybrid), SSH public keys (ssh-ed25519, ssh-rsa), or a passphrase
// (scrypt); identities are age identity files or SSH private keys.
package crypt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Scheme is what an encrypted artifact's manifest says.
const Scheme = "age"

// Extension ends the key of an encrypted artifact ("X.sql.zst.age").
const Extension = "age"

// Recipients are who can decrypt what Encrypt writes.
type Recipients struct {
	list []age.Recipient
	// Names describe the recipients for the manifest: age public keys as they are, SSH keys
	// by their type and SHA-256 fingerprint, a passphrase as "scrypt". Never a secret.
	Names []string
	keys  []string // the public keys as given; for Public
	pass  bool
}

// Public returns the recipients as public key strings that Add accepts, for encrypting in
// another process; ok is false when one is a passphrase (a secret that stays here).
func (r *Recipients) Public() (keys []string, ok bool) {
	if r == nil || r.pass {
		return nil, false
	}
	return r.keys, true
}

// Empty reports whether there is no one to encrypt for (the data is then not encrypted).
func (r *Recipients) Empty() bool { return r == nil || len(r.list) == 0 }

// ParseRecipient reads one public key: "age1...", "age1pq1..." or an SSH public key line
// ("ssh-ed25519 AAAA... comment", "ssh-rsa ...").
func ParseRecipient(s string) (age.Recipient, string, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "ssh-"):
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return nil, "", fmt.Errorf("SSH public key %q: %v", shorten(s), err)
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, "", fmt.Errorf("SSH public key %q: %v", shorten(s), err)
		}
		return r, pk.Type() + " " + ssh.FingerprintSHA256(pk), nil
	case strings.HasPrefix(s, "age1"):
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil {
			return nil, "", fmt.Errorf("age public key %q: %v", shorten(s), err)
		}
		return rs[0], s, nil
	case strings.HasPrefix(s, "AGE-SECRET-KEY"), strings.Contains(s, "PRIVATE KEY"):
		// Never echo what may be a private key.
		return nil, "", fmt.Errorf("a private key was given where a public key (a recipient) belongs: give its public key (age-keygen -y, or the .pub file)")
	}
	return nil, "", fmt.Errorf("%q is not an age public key (age1...) nor an SSH public key (ssh-ed25519 ..., ssh-rsa ...)", shorten(s))
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Add adds public keys: each string one key, or several separated by commas or new lines
// (what a label or an environment variable holds).
func (r *Recipients) Add(keys ...string) error {
	for _, k := range keys {
		for _, line := range strings.FieldsFunc(k, func(c rune) bool { return c == ',' || c == '\n' }) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			rec, name, err := ParseRecipient(line)
			if err != nil {
				return err
			}
			r.list = append(r.list, rec)
			r.Names = append(r.Names, name)
			r.keys = append(r.keys, line)
		}
	}
	return nil
}

// AddFile adds the public keys of a recipients file: one per line, # comments, like
// `age -R`.
func (r *Recipients) AddFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading recipients file: %w", err)
	}
	if err := r.Add(string(b)); err != nil {
		return fmt.Errorf("recipients file %s: %w", file, err)
	}
	return nil
}

// AddPassphrase encrypts for a passphrase (scrypt). It cannot be combined with other
// recipients (age's rule).
func (r *Recipients) AddPassphrase(pass string) error {
	rec, err := age.NewScryptRecipient(pass)
	if err != nil {
		return err
	}
	r.list = append(r.list, rec)
	r.Names = append(r.Names, "scrypt")
	r.pass = true
	return nil
}

// Encrypt returns a writer that encrypts to w; Close it to finish the stream (it does not
// close w).
func (r *Recipients) Encrypt(w io.Writer) (io.WriteCloser, error) {
	wc, err := age.Encrypt(w, r.list...)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return wc, nil
}

// Identities can decrypt artifacts.
type Identities struct {
	list []age.Identity
}

// Empty reports whether there is none.
func (i *Identities) Empty() bool { return i == nil || len(i.list) == 0 }

// AddFile reads an identity file: age identities (AGE-SECRET-KEY-1..., one per line, as
// age-keygen writes them) or an SSH private key (unencrypted, PEM/OpenSSH).
func (i *Identities) AddFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading identity file: %w", err)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		id, err := agessh.ParseIdentity(b)
		if err != nil {
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return fmt.Errorf("identity file %s is an SSH key protected by a passphrase, which cannot be used here: give a key without one, or an age identity", file)
			}
			return fmt.Errorf("identity file %s: %v", file, err)
		}
		i.list = append(i.list, id)
		return nil
	}
	ids, err := age.ParseIdentities(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return fmt.Errorf("identity file %s: %v (an age identity file or an SSH private key)", file, err)
	}
	i.list = append(i.list, ids...)
	return nil
}

// AddPassphrase decrypts what was encrypted for a passphrase.
func (i *Identities) AddPassphrase(pass string) error {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return err
	}
	i.list = append(i.list, id)
	return nil
}

// ErrNoIdentity is wrapped when an encrypted artifact meets no identity that opens it.
var ErrNoIdentity = errors.New("no identity can decrypt it")

// Decrypt returns the plaintext of r. It reads the header at once: an artifact no identity
// opens fails here, before anything is restored.
func (i *Identities) Decrypt(r io.Reader, recipients []string) (io.Reader, error) {
	if i.Empty() {
		return nil, fmt.Errorf("it is encrypted (age) for %s, and no identity was given: %w", strings.Join(recipients, ", "), ErrNoIdentity)
	}
	pr, err := age.Decrypt(r, i.list...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("it is encrypted (age) for %s, which none of the given identities is: %w", strings.Join(recipients, ", "), ErrNoIdentity)
		}
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	return pr, nil
}
