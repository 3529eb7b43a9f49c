package gcs

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// scope is what the credentials are asked for: objects read, written and deleted.
const scope = "https://www.googleapis.com/auth/devstorage.read_write"

// newClient follows no redirect: the bearer token is added below net/http's own stripping of
// Authorization across hosts, so a redirected request would carry it anywhere.
func newClient(tr http.RoundTripper) *http.Client {
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// baseTransport has timeouts for connecting and for the server's first answer; a body then
// streams as long as it takes.
func baseTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 2 * time.Minute
	return tr
}

// credentialVars are the variables naming a key file, the named target's own first.
func credentialVars(prefix string) []string {
	if prefix == "" {
		return []string{CredentialsVar}
	}
	return []string{prefix + "_" + CredentialsVar, CredentialsVar}
}

// httpClient is a client that signs its requests with the credentials of cfg, and the
// variable they came from: the key file the first set variable names; else, against an
// emulator, none; else Application Default Credentials (gcloud's file, the metadata server).
func httpClient(ctx context.Context, cfg Config) (*http.Client, string, error) {
	base := newClient(baseTransport())
	for _, v := range credentialVars(cfg.CredentialsEnv) {
		file := os.Getenv(v)
		if file == "" {
			continue
		}
		creds, err := keyFile(ctx, v, file)
		if err != nil {
			return nil, "", err
		}
		return clientWith(base, creds.TokenSource), v, nil
	}
	if cfg.Endpoint != "" {
		return base, "", nil // an emulator asks for no credentials
	}
	creds, err := google.FindDefaultCredentials(context.WithValue(ctx, oauth2.HTTPClient, base), scope)
	if err != nil {
		return nil, "", fmt.Errorf("no Google credentials: set %s to a service-account key file (JSON): %w", CredentialsVar, err)
	}
	return clientWith(base, creds.TokenSource), "", nil
}

// keyFile reads the key file variable v names: a service-account key, or a user's
// credentials file written by gcloud. Errors name the variable and the file, never its content.
func keyFile(ctx context.Context, v, file string) (*google.Credentials, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the key file %s names: %w", v, err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("the key file %s names (%s) is not a JSON key file", v, file)
	}
	var typ google.CredentialsType
	switch head.Type {
	case "service_account":
		typ = google.ServiceAccount
	case "authorized_user":
		typ = google.AuthorizedUser
	default:
		return nil, fmt.Errorf("the key file %s names (%s) is of type %q, not a service-account key (service_account)", v, file, head.Type)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: baseTransport(), Timeout: time.Minute})
	creds, err := google.CredentialsFromJSONWithType(ctx, data, typ, scope)
	if err != nil {
		return nil, fmt.Errorf("the key file %s names (%s) is not a usable %s key: %w", v, file, head.Type, err)
	}
	return creds, nil
}

// clientWith signs requests with tokens from ts.
func clientWith(base *http.Client, ts oauth2.TokenSource) *http.Client {
	return newClient(&oauth2.Transport{Source: ts, Base: base.Transport})
}
