package commands

import (
	"fmt"
	"os"
	"strings"

	"github.com/docker-backup/docker-backup/internal/crypt"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// envIdentity is a default for --identity.
const envIdentity = "DOCKER_BACKUP_AGE_IDENTITY_FILE"

// encryptOptions are the flags of a backup's encryption.
type encryptOptions struct {
	recipients      []string
	recipientsFiles []string
	passphraseFile  string
	askPassphrase   bool
}

func encryptFlags(flags *pflag.FlagSet, o *encryptOptions) {
	flags.StringArrayVarP(&o.recipients, "recipient", "r", nil, "Encrypt for this age public key (age1...) or SSH public key (ssh-ed25519 ..., ssh-rsa ...); repeatable")
	flags.StringArrayVarP(&o.recipientsFiles, "recipients-file", "R", nil, "Encrypt for the public keys in this file, one per line (as age -R); repeatable")
	flags.StringVar(&o.passphraseFile, "passphrase-file", "", "Encrypt with the passphrase in this file (scrypt)")
	flags.BoolVar(&o.askPassphrase, "passphrase", false, "Encrypt with a passphrase asked on the terminal (scrypt)")
}

// recipients builds what a backup is encrypted for; empty when no flag asks for encryption.
func (o encryptOptions) build(dockerCli command.Cli) (*crypt.Recipients, error) {
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

// decryptOptions are the flags of a restore's decryption.
type decryptOptions struct {
	identities     []string
	passphraseFile string
	askPassphrase  bool
}

func decryptFlags(flags *pflag.FlagSet, o *decryptOptions) {
	var def []string
	if f := os.Getenv(envIdentity); f != "" {
		def = []string{f}
	}
	flags.StringArrayVarP(&o.identities, "identity", "i", def, "Decrypt with this age identity file or SSH private key (default: $"+envIdentity+"); repeatable")
	flags.StringVar(&o.passphraseFile, "passphrase-file", "", "Decrypt with the passphrase in this file")
	flags.BoolVar(&o.askPassphrase, "passphrase", false, "Decrypt with a passphrase asked on the terminal")
}

func (o decryptOptions) build(dockerCli command.Cli) (*crypt.Identities, error) {
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
