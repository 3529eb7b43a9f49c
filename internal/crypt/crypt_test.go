package crypt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

func roundTrip(t *testing.T, r *Recipients, ids *Identities) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	w, err := r.Encrypt(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("payload"))
	w.Close()
	p, err := ids.Decrypt(&buf, r.Names)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(p)
}

func TestRecipientsAndIdentities(t *testing.T) {
	dir := t.TempDir()
	x, _ := age.GenerateX25519Identity()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshKeyFile := filepath.Join(dir, "id_ed25519")
	os.WriteFile(sshKeyFile, pem.EncodeToMemory(block), 0o600)
	ageKeyFile := filepath.Join(dir, "key.txt")
	os.WriteFile(ageKeyFile, []byte("# a comment\n"+x.String()+"\n"), 0o600)

	var r Recipients
	// Several at once: a label or a variable holds them comma- or line-separated.
	if err := r.Add(x.Recipient().String() + "," + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " me@host"); err != nil {
		t.Fatal(err)
	}
	if len(r.Names) != 2 || r.Names[0] != x.Recipient().String() || !strings.HasPrefix(r.Names[1], "ssh-ed25519 SHA256:") {
		t.Errorf("names %q", r.Names)
	}
	for name, file := range map[string]string{"age identity": ageKeyFile, "ssh key": sshKeyFile} {
		var ids Identities
		if err := ids.AddFile(file); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := roundTrip(t, &r, &ids); err != nil || string(got) != "payload" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	other, _ := age.GenerateX25519Identity()
	os.WriteFile(filepath.Join(dir, "other.txt"), []byte(other.String()), 0o600)
	var wrong Identities
	wrong.AddFile(filepath.Join(dir, "other.txt"))
	if _, err := roundTrip(t, &r, &wrong); !errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), x.Recipient().String()) {
		t.Errorf("a wrong identity: %v", err)
	}
	if _, err := roundTrip(t, &r, nil); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identity: %v", err)
	}

	// A passphrase.
	var pr Recipients
	pr.AddPassphrase("correct horse")
	var pi Identities
	pi.AddPassphrase("correct horse")
	if got, err := roundTrip(t, &pr, &pi); err != nil || string(got) != "payload" || pr.Names[0] != "scrypt" {
		t.Errorf("passphrase: %q, %v %q", got, err, pr.Names)
	}
}

func TestBadRecipients(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	for in, want := range map[string]string{
		x.String():        "a private key was given where a public key",
		"age1notakey":     "age public key",
		"ssh-ed25519 AAA": "SSH public key",
		"hello":           "is not an age public key",
	} {
		var r Recipients
		err := r.Add(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Add(%.20q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("a private key was echoed: %v", err)
		}
	}
}
