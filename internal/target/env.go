package target

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// EnvOrFile reads NAME from the environment, or the file NAME_FILE names.
func EnvOrFile(name string) (string, error) {
	if v := os.Getenv(name); v != "" {
		return v, nil
	}
	f := os.Getenv(name + "_FILE")
	if f == "" {
		return "", nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		// The error names the variable, never its value: a secret pasted into NAME_FILE
		// instead of NAME would be shown as the file's name.
		return "", fmt.Errorf("reading the file %s names: %w", name+"_FILE", Unnamed(err))
	}
	return strings.TrimSpace(string(b)), nil
}

// ErrSecretInURL is wrapped by the errors that refuse a target URL holding a secret (a key, a
// password): a URL is shown in errors, status and logs. Such an error never holds the URL.
var ErrSecretInURL = errors.New("a target URL must not hold secrets")

// SecretInURL returns an error that says msg and wraps ErrSecretInURL.
func SecretInURL(msg string) error { return secretInURL(msg) }

type secretInURL string

func (e secretInURL) Error() string        { return string(e) }
func (e secretInURL) Is(target error) bool { return target == ErrSecretInURL }

// Unnamed is err without the file name a *fs.PathError carries (a name may be a secret put
// where a file's name belongs): "no such file or directory" instead of "open NAME: …".
func Unnamed(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
