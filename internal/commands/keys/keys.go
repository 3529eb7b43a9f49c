// Package keys is the plugin's keys: the one its backups are signed with (made on first use),
// the public keys it trusts, and the recipients or identities its encryption flags name, with
// the passphrase they may ask for.
package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-backup/docker-backup/internal/artifact"
	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker-backup/docker-backup/internal/repo"
	"github.com/docker-backup/docker-backup/internal/snapshots"
	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Environment variables of the plugin's keys.
const (
	// EnvSigningKey names the file of the key manifests are signed and verified with.
	EnvSigningKey = "DOCKER_BACKUP_SIGNING_KEY_FILE"
	// EnvIdentity is a default for --identity.
	EnvIdentity = "DOCKER_BACKUP_AGE_IDENTITY_FILE"
)

// signingKeyFile is where the plugin's signing key is: $DOCKER_BACKUP_SIGNING_KEY_FILE, else
// docker-backup/signing.key in the docker CLI's configuration directory.
func signingKeyFile() (file string, given bool) {
	if f := os.Getenv(EnvSigningKey); f != "" {
		return f, true
	}
	return filepath.Join(config.Dir(), "docker-backup", "signing.key"), false
}

// Signer returns the key backups are signed with, made on first use (which it tells w).
func Signer(w io.Writer) (*artifact.SigningKey, error) {
	file, given := signingKeyFile()
	if given {
		return artifact.LoadSigningKey(file)
	}
	k, created, err := artifact.LoadOrCreateSigningKey(file)
	if err != nil {
		return nil, fmt.Errorf("the signing key: %w (name another file with $%s)", err, EnvSigningKey)
	}
	if created {
		fmt.Fprintf(w, "Made a signing key for your backups in %s (key %s). Restores check it: keep a copy, or restore elsewhere with $%s.\n", file, k.ID(), EnvSigningKey)
	}
	return k, nil
}

// TrustFlag adds --trust to a command that checks signatures.
func TrustFlag(flags *pflag.FlagSet, files *[]string) {
	flags.StringArrayVar(files, "trust", nil, "Also trust backups signed by the public keys in this file, one a line as `docker backup key` prints them (also $"+artifact.EnvTrustedKeys+"[_FILE]); repeatable")
}

// Keyring returns the keys restores, verifies and listings trust: the plugin's own signing
// key when it has one, and the public keys of --trust files and $DOCKER_BACKUP_TRUSTED_KEYS
// [_FILE].
func Keyring(trustFiles []string) (*artifact.Keyring, error) {
	file, given := signingKeyFile()
	own, err := artifact.LoadSigningKey(file)
	if err != nil && !given && errors.Is(err, os.ErrNotExist) {
		own, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	public, err := artifact.TrustedKeys(os.Getenv, trustFiles...)
	if err != nil {
		return nil, err
	}
	return artifact.NewKeyring(own, public...), nil
}

// Encrypt are the flags of a backup's encryption.
type Encrypt struct {
	recipients      []string
	recipientsFiles []string
	passphraseFile  string
	askPassphrase   bool
}

// AddFlags adds the encryption flags.
func (o *Encrypt) AddFlags(flags *pflag.FlagSet) {
	flags.StringArrayVarP(&o.recipients, "recipient", "r", nil, "Encrypt for this age public key (age1...) or SSH public key (ssh-ed25519 ..., ssh-rsa ...); repeatable")
	flags.StringArrayVarP(&o.recipientsFiles, "recipients-file", "R", nil, "Encrypt for the public keys in this file, one per line (as age -R); repeatable")
	flags.StringVar(&o.passphraseFile, "passphrase-file", "", "Encrypt with the passphrase in this file (scrypt)")
	flags.BoolVar(&o.askPassphrase, "passphrase", false, "Encrypt with a passphrase asked on the terminal (scrypt)")
}

// Given reports whether a flag asks for encryption.
func (o Encrypt) Given() bool {
	return len(o.recipients)+len(o.recipientsFiles) > 0 || o.passphraseFile != "" || o.askPassphrase
}

// Recipients builds what a backup is encrypted for; empty when no flag asks for encryption.
func (o Encrypt) Recipients(dockerCli command.Cli) (*crypt.Recipients, error) {
	var r crypt.Recipients
	if err := r.Add(o.recipients...); err != nil {
		return nil, err
	}
	for _, f := range o.recipientsFiles {
		if err := r.AddFile(f); err != nil {
			return nil, err
		}
	}
	pass, err := passphrase(dockerCli, o.passphraseFile, o.askPassphrase, true)
	if err != nil {
		return nil, err
	}
	if pass != "" {
		if !r.Empty() {
			return nil, fmt.Errorf("a passphrase cannot be combined with recipients (age's rule): use one or the other")
		}
		if err := r.AddPassphrase(pass); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// Decrypt are the flags of a restore's decryption.
type Decrypt struct {
	identities     []string
	passphraseFile string
	askPassphrase  bool
}

// AddFlags adds the decryption flags.
func (o *Decrypt) AddFlags(flags *pflag.FlagSet) {
	var def []string
	if f := os.Getenv(EnvIdentity); f != "" {
		def = []string{f}
	}
	flags.StringArrayVarP(&o.identities, "identity", "i", def, "Decrypt with this age identity file or SSH private key (default: $"+EnvIdentity+"); repeatable")
	flags.StringVar(&o.passphraseFile, "passphrase-file", "", "Decrypt with the passphrase in this file")
	flags.BoolVar(&o.askPassphrase, "passphrase", false, "Decrypt with a passphrase asked on the terminal")
}

// Given reports whether a flag names a way to decrypt, beyond the default identity of
// $DOCKER_BACKUP_AGE_IDENTITY_FILE.
func (o Decrypt) Given() bool {
	return len(o.identities) > 0 && os.Getenv(EnvIdentity) == "" || o.passphraseFile != "" || o.askPassphrase
}

// Identities builds what a restore decrypts with.
func (o Decrypt) Identities(dockerCli command.Cli) (*crypt.Identities, error) {
	var ids crypt.Identities
	for _, f := range o.identities {
		if err := ids.AddFile(f); err != nil {
			return nil, err
		}
	}
	pass, err := passphrase(dockerCli, o.passphraseFile, o.askPassphrase, false)
	if err != nil {
		return nil, err
	}
	if pass != "" {
		if err := ids.AddPassphrase(pass); err != nil {
			return nil, err
		}
	}
	return &ids, nil
}

// passphrase reads a passphrase from a file or the terminal (twice when it is new); never
// from a flag, where any user could read it in the process list.
func passphrase(dockerCli command.Cli, file string, ask, confirm bool) (string, error) {
	switch {
	case file != "" && ask:
		return "", fmt.Errorf("--passphrase-file and --passphrase: choose one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the passphrase: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", fmt.Errorf("the passphrase file %s is empty", file)
		}
		return p, nil
	case !ask:
		return "", nil
	}
	in := dockerCli.In()
	if !in.IsTerminal() {
		return "", fmt.Errorf("--passphrase asks on a terminal, and stdin is not one: use --passphrase-file")
	}
	read := func(prompt string) (string, error) {
		fmt.Fprint(dockerCli.Err(), prompt)
		b, err := term.ReadPassword(int(in.FD()))
		fmt.Fprintln(dockerCli.Err())
		return string(b), err
	}
	p, err := read("Passphrase: ")
	if err != nil || p == "" {
		return "", fmt.Errorf("no passphrase given")
	}
	if confirm {
		again, err := read("Passphrase again: ")
		if err != nil || again != p {
			return "", fmt.Errorf("the passphrases differ")
		}
	}
	return p, nil
}

// RepositoryKeyFlag adds --repository-key-file to a command that writes or reads snapshots.
func RepositoryKeyFlag(flags *pflag.FlagSet, file *string) {
	flags.StringVar(file, "repository-key-file", os.Getenv(snapshots.EnvKeyFile), "The key file of an encrypted snapshot repository made on another host (default: $"+snapshots.EnvKeyFile+"; the key of one made here is kept in the docker CLI's configuration directory)")
}

// Repository is where the plugin finds the key files of encrypted snapshot repositories: the
// given file, and docker-backup/ in the docker CLI's configuration directory (where the key
// of a repository it makes is kept).
func Repository(file string) snapshots.Keys {
	return snapshots.Keys{File: file, Dir: filepath.Join(config.Dir(), "docker-backup")}
}

// Snapshot opens the snapshot ref (snapshot:ID) in the repository of t, trusting trustFiles
// (and this host's signing key), with the identities of decrypt for an encrypted repository
// whose key file repoKeys does not hold.
func Snapshot(ctx context.Context, dockerCli command.Cli, t target.Target, ref string, repoKeys snapshots.Keys, trustFiles []string, decrypt Decrypt) (*repo.Repo, *repo.Snapshot, error) {
	ring, err := Keyring(trustFiles)
	if err != nil {
		return nil, nil, err
	}
	ids, err := decrypt.Identities(dockerCli)
	if err != nil {
		return nil, nil, err
	}
	return snapshots.OpenRef(ctx, t, ref, repoKeys, repo.Access{Trust: ring, Identities: ids})
}
