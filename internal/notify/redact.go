package notify

import (
	"net/url"
	"sort"
	"strings"
)

// Secrets are the parts of a URL that may be a token: the whole URL, its user and password,
// its path segments and query values (those of 4 characters or more), in every escaping.
func Secrets(raw string) []string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	out := []string{raw}
	add := func(s string) {
		if len(s) >= 4 {
			out = append(out, s)
			if e := url.PathEscape(s); e != s {
				out = append(out, e)
			}
			if e := url.QueryEscape(s); e != s {
				out = append(out, e)
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not a URL: everything after the scheme is secret.
		if _, rest, ok := strings.Cut(raw, "://"); ok {
			add(rest)
		}
		return out
	}
	if u.User != nil {
		add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.User.String())
	}
	for _, seg := range strings.Split(u.Path, "/") {
		add(seg)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	if u.Opaque != "" {
		add(u.Opaque)
	}
	return out
}

// Redact replaces every secret in s by "***", longest first.
func Redact(s string, secrets []string) string {
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, sec := range sorted {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}
