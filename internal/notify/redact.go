package notify

import (
	"net/url"
	"sort"
	"strings"
)

// publicHost lists the schemes whose host is a server's name. Every other scheme's host may be
// a token (ifttt://KEY, slack://TOKEN-A/…, pushbullet://TOKEN, pushover://…@USER-KEY,
// teams://…@TENANT/…, wecom://KEY, discord://…@WEBHOOK-ID, and services not known yet).
var publicHost = map[string]bool{
	"http": true, "https": true, "generic": true, "smtp": true, "ntfy": true, "gotify": true, "matrix": true,
	"mattermost": true, "rocketchat": true, "zulip": true, "signal": true, "bark": true, "opsgenie": true,
	"googlechat": true, "lark": true, "logger": true, "join": true, "telegram": true,
}

// Secrets are the parts of a URL that may be a token: the whole URL, its user and password,
// its host unless the scheme names a server there, its path segments and query values (those of
// 4 characters or more), in every escaping. A Slack token's three parts count one by one too:
// they reach Slack as a path (hooks.slack.com/services/A/B/C), which an error may show.
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
	scheme, _, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	if !publicHost[scheme] {
		add(u.Hostname())
	}
	if scheme == "slack" {
		for _, part := range strings.FieldsFunc(u.User.String()+"/"+u.Host+u.Path, func(r rune) bool { return strings.ContainsRune("-/,:@", r) }) {
			if len(part) >= 9 { // not "hook" or "xoxb": each part of a token has 9 characters or more
				add(part)
			}
		}
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
