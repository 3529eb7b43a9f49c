package azure

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/docker-backup/docker-backup/internal/target"
	"github.com/docker/go-units"
)

// Config describes a container of an Azure storage account. It never holds credentials: those
// come from the environment (AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or
// AZURE_STORAGE_SAS_TOKEN, or their _FILE forms).
type Config struct {
	Container string
	Prefix    string // blobs are named PREFIX/KEY, without leading or trailing slashes
	// Endpoint is the Blob service's base URL (scheme://host[:port][/path]); empty for
	// https://ACCOUNT.blob.core.windows.net, or AZURE_STORAGE_ENDPOINT when set.
	Endpoint  string
	BlockSize int64 // one staged block: the memory an upload holds
	// CredentialsEnv, when set, names an environment prefix read before the common variables:
	// PREFIX_AZURE_STORAGE_ACCOUNT, PREFIX_AZURE_STORAGE_KEY, PREFIX_AZURE_STORAGE_SAS_TOKEN
	// (or their _FILE forms), PREFIX_AZURE_STORAGE_ENDPOINT.
	CredentialsEnv string
}

// DefaultBlockSize bounds an upload's memory to one block; with Azure's 50,000 blocks a blob
// it allows blobs up to 390 GiB. Raise it with ?block-size= for larger backups.
const DefaultBlockSize = 8 << 20

// errSecretInURL refuses an azure:// URL that holds a key or a SAS token; it never shows the URL.
var errSecretInURL = target.SecretInURL("a target URL must not hold secrets (an account key or a SAS token; the URL is not shown): " +
	"for Azure give them in AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or in files named by AZURE_STORAGE_KEY_FILE or AZURE_STORAGE_SAS_TOKEN_FILE")

// secretMarkers are parts of a URL that only a secret brings: user info, a SAS token's
// signature, a connection string's key.
var secretMarkers = []string{"@", "sig=", "sig%3d", "accountkey", "sharedaccesssignature"}

// ParseURL reads azure://CONTAINER[/PREFIX][?endpoint=URL&block-size=SIZE].
func ParseURL(raw string) (Config, error) {
	lower := strings.ToLower(raw)
	for _, m := range secretMarkers {
		if strings.Contains(lower, m) {
			return Config{}, errSecretInURL
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "azure" {
		return Config{}, fmt.Errorf("target %q is not an azure:// URL (azure://CONTAINER/PREFIX)", raw)
	}
	q := u.Query()
	for k := range q { // before any error shows the URL
		if looksSecret(k) {
			return Config{}, errSecretInURL
		}
	}
	cfg := Config{Container: u.Host, Prefix: strings.Trim(path.Clean("/"+u.Path), "/"), BlockSize: DefaultBlockSize}
	if err := checkContainer(cfg.Container); err != nil {
		return Config{}, fmt.Errorf("target %q: %w", raw, err)
	}
	for k := range q {
		if k != "endpoint" && k != "block-size" {
			return Config{}, fmt.Errorf("target %q: unknown option %q (known: endpoint, block-size)", raw, k)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		if cfg.Endpoint, err = checkEndpoint(ep); err != nil {
			return Config{}, fmt.Errorf("target %q: %w", raw, err)
		}
	}
	if v := q.Get("block-size"); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n < 1<<20 || n > 256<<20 {
			return Config{}, fmt.Errorf("target %q: block-size=%q must be between 1MiB and 256MiB", raw, v)
		}
		cfg.BlockSize = n
	}
	return cfg, nil
}

func looksSecret(option string) bool {
	o := strings.ToLower(option)
	for _, w := range []string{"key", "sas", "sig", "token", "secret", "pass"} {
		if strings.Contains(o, w) {
			return true
		}
	}
	return false
}

// checkContainer applies Azure's rules for container names: 3 to 63 lowercase letters, digits
// and single hyphens, starting and ending with a letter or digit.
func checkContainer(name string) error {
	if name == "" {
		return fmt.Errorf("no container named: azure://CONTAINER/PREFIX")
	}
	ok := len(name) >= 3 && len(name) <= 63 && !strings.Contains(name, "--") &&
		name[0] != '-' && name[len(name)-1] != '-'
	for _, r := range name {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}
	if !ok {
		return fmt.Errorf("container %q: a container's name is 3 to 63 lowercase letters, digits and single hyphens", name)
	}
	return nil
}

// checkEndpoint accepts https://HOST[:PORT][/PATH] or http://… (cleartext only when said
// so); a bare host means https.
func checkEndpoint(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	switch {
	case err != nil || u.Host == "":
		return "", fmt.Errorf("endpoint %q is not a URL (https://HOST[:PORT][/PATH])", ep)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("endpoint scheme %q must be http or https", u.Scheme)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", errSecretInURL
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// credentials are what signs requests: an account key (SharedKey) or a SAS token. from names
// the variable they came from, for errors; it is never the secret.
type credentials struct {
	account  string
	key      []byte // decoded account key, or nil
	sas      string // SAS token without its "?", or ""
	from     string
	endpoint string // AZURE_STORAGE_ENDPOINT of the same set, or ""
}

// loadCredentials reads PREFIX_AZURE_STORAGE_* (when prefix is set and holds a key or a
// token), else AZURE_STORAGE_*; the account and endpoint fall back to the common ones.
func loadCredentials(prefix string) (credentials, error) {
	sets := []string{""}
	if prefix != "" {
		sets = []string{prefix + "_", ""}
	}
	var c credentials
	for _, set := range sets {
		vals := map[string]string{}
		for _, s := range []string{"ACCOUNT", "KEY", "SAS_TOKEN", "ENDPOINT"} {
			v, err := target.EnvOrFile(set + "AZURE_STORAGE_" + s)
			if err != nil {
				return credentials{}, err
			}
			vals[s] = v
		}
		c.account = first(c.account, vals["ACCOUNT"])
		c.endpoint = first(c.endpoint, vals["ENDPOINT"])
		if c.from != "" {
			continue
		}
		if k := vals["KEY"]; k != "" {
			key, err := base64.StdEncoding.DecodeString(k)
			if err != nil {
				return credentials{}, fmt.Errorf("%sAZURE_STORAGE_KEY (or its _FILE) is not an account key: it is not base64", set)
			}
			c.key, c.from = key, set+"AZURE_STORAGE_KEY"
		} else if s := vals["SAS_TOKEN"]; s != "" {
			c.sas, c.from = strings.TrimPrefix(s, "?"), set+"AZURE_STORAGE_SAS_TOKEN"
			if _, err := url.ParseQuery(c.sas); err != nil {
				return credentials{}, fmt.Errorf("%s (or its _FILE) is not a SAS token (sv=…&sig=…)", c.from)
			}
		}
	}
	if c.from == "" {
		return credentials{}, fmt.Errorf("no Azure credentials: set %s", need(prefix))
	}
	if c.account == "" && c.key != nil {
		return credentials{}, fmt.Errorf("an account key needs its account's name: set %sAZURE_STORAGE_ACCOUNT", strings.TrimSuffix(c.from, "AZURE_STORAGE_KEY"))
	}
	return c, nil
}

func need(prefix string) string {
	s := "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (or their _FILE forms)"
	if prefix != "" {
		s = prefix + "_" + strings.ReplaceAll(s, " AZURE", " "+prefix+"_AZURE") + ", or the common " + s
	}
	return s
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
