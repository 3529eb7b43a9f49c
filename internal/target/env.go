package target

import (
	"errors"
	"fmt"
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
		return "", fmt.Errorf("reading %s: %w", name+"_FILE", err)
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
