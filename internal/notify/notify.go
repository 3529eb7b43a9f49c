// Package notify tells people what the sidecar did, for those who run no Prometheus:
// notification URLs in shoutrrr's style (email, Slack, Discord, Telegram, ntfy, Gotify,
// Matrix, generic webhooks…) and dead-man pings (healthchecks.io, Uptime Kuma push URLs).
//
// Sending never blocks nor fails a backup: messages wait in a bounded queue, are retried
// with backoff, and a failure is logged — never with its URL, which holds a token — and
// counted.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Level says which events are sent.
type Level int

const (
	// LevelError sends failures only: runs and verifies that failed, invalid labels, runs a
	// crash interrupted.
	LevelError Level = iota
	// LevelInfo also sends successes.
	LevelInfo
)

// ParseLevel reads "error" or "info".
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "error":
		return LevelError, nil
	case "info":
		return LevelInfo, nil
	}
	return 0, fmt.Errorf("must be error (failures only, the default) or info (successes too)")
}

// Off is the docker-backup.notify label's value that sends nothing for a job.
const Off = "off"

// DefaultSet names the URL set of jobs without a docker-backup.notify label.
const DefaultSet = "default"

// Event is what happened, as a message says it.
type Event struct {
	// Kind is what ran: "backup", "verify", "labels" (an invalid label), "untrusted" (backups
	// no trusted key signed found beside a job's), "recovery" (a run
	// a crash interrupted).
	Kind                          string
	Project, Service, Job, Target string
	Failed                        bool
	// Error is what went wrong; messages carry its first line.
	Error    string
	Key      string
	Size     int64
	Duration time.Duration
	Host     string
	Time     time.Time
}

// Subject names the job (or the service) the event is about.
func (e Event) Subject() string {
	s := strings.Trim(e.Project+"/"+e.Service, "/")
	if e.Job != "" {
		s += "/" + e.Job
	}
	return s
}

// Result is "failed" or "succeeded".
func (e Event) Result() string {
	if e.Failed {
		return "failed"
	}
	return "succeeded"
}

// Title is a message's one-line title.
func (e Event) Title() string {
	switch e.Kind {
	case "labels":
		return "docker-backup: invalid label on " + e.Subject()
	case "recovery":
		return "docker-backup: a run of " + e.Subject() + " was interrupted"
	case "untrusted":
		return "docker-backup: backups nobody trusted wrote are beside " + e.Subject()
	}
	return fmt.Sprintf("docker-backup: %s of %s %s", e.Kind, e.Subject(), e.Result())
}

// FirstLine is the error's first line.
func (e Event) FirstLine() string {
	line, _, _ := strings.Cut(strings.TrimSpace(e.Error), "\n")
	return line
}

// HumanSize is Size in B, KiB, MiB or GiB.
func (e Event) HumanSize() string {
	const unit = 1024
	if e.Size < unit {
		return fmt.Sprintf("%d B", e.Size)
	}
	div, exp := int64(unit), 0
	for n := e.Size / unit; n >= unit && exp < 3; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(e.Size)/float64(div), "KMGT"[exp])
}

// DefaultTemplate is the message's text unless a template file replaces it. It is a Go
// text/template over Event.
const DefaultTemplate = `{{.Title}}
{{- if .Error}}
error: {{.FirstLine}}{{end}}
{{- if .Key}}
backup: {{.Key}}{{end}}
{{- if .Size}}
size: {{.HumanSize}}{{end}}
{{- if .Duration}}
duration: {{.Duration}}{{end}}
{{- if .Target}}
target: {{.Target}}{{end}}
host: {{.Host}}
time: {{.Time.Format "2006-01-02 15:04:05 MST"}}`

// Config is what a Notifier sends, where, and how.
type Config struct {
	// Sets are the named URL sets; DefaultSet is used by jobs without a notify label.
	Sets map[string][]string
	// Level says which events are sent.
	Level Level
	// Template replaces DefaultTemplate when not empty.
	Template string
	// Host names the machine in messages.
	Host string
	// Counted is told the outcome of each notification ("notify") and ping ("ping").
	Counted func(kind string, ok bool)
	Log     *slog.Logger
	// Client sends pings (default: a client with a 10 s timeout).
	Client *http.Client
	// Tries bounds the attempts of one message or ping (default 4); FirstRetry is the
	// wait before the second (default 1 s), doubling after.
	Tries      uint
	FirstRetry time.Duration
	// Queue bounds the messages waiting (default 256): beyond it they are dropped, counted
	// as failed.
	Queue int
}

// Notifier sends notifications and pings in the background, in order.
type Notifier struct {
	cfg     Config
	log     *slog.Logger
	tmpl    *template.Template
	sets    map[string][]destination
	secrets []string // every URL's secret parts, never logged
	queue   chan func(context.Context)
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

// destination is one notification URL, ready to send.
type destination struct {
	scheme string
	router *router.ServiceRouter
}

// New checks every URL and the template, and starts the sender. Errors name the set, the
// URL's position and its service, never the URL.
func New(cfg Config) (*Notifier, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Tries == 0 {
		cfg.Tries = 4
	}
	if cfg.FirstRetry == 0 {
		cfg.FirstRetry = time.Second
	}
	if cfg.Queue == 0 {
		cfg.Queue = 256
	}
	if cfg.Counted == nil {
		cfg.Counted = func(string, bool) {}
	}
	text := cfg.Template
	if text == "" {
		text = DefaultTemplate
	}
	tmpl, err := template.New("message").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("the notification template: %w", err)
	}
	if err := tmpl.Execute(&bytes.Buffer{}, Event{Kind: "backup", Project: "p", Service: "s", Job: "j", Time: time.Now()}); err != nil {
		return nil, fmt.Errorf("the notification template: %w", err)
	}
	n := &Notifier{cfg: cfg, log: cfg.Log, tmpl: tmpl, sets: map[string][]destination{}, queue: make(chan func(context.Context), cfg.Queue), done: make(chan struct{})}
	for name, urls := range cfg.Sets {
		for i, u := range urls {
			n.secrets = append(n.secrets, Secrets(u)...)
			d, err := newDestination(u)
			if err != nil {
				return nil, fmt.Errorf("notification set %q, URL %d: %s", name, i+1, Redact(err.Error(), Secrets(u)))
			}
			n.sets[name] = append(n.sets[name], d)
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.work()
	return n, nil
}

// CheckURL reports whether u is a notification URL shoutrrr can send to; the error never
// shows the URL's secret parts.
func CheckURL(u string) error {
	_, err := newDestination(u)
	if err != nil {
		return errors.New(Redact(err.Error(), Secrets(u)))
	}
	return nil
}

func newDestination(u string) (destination, error) {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok || scheme == "" {
		return destination{}, fmt.Errorf("not a service URL like slack://…, ntfy://…, smtp://… or generic+https://…")
	}
	if scheme == "smtp" {
		u = withSMTPTimeout(u)
	}
	r, err := router.New(nil, u)
	if err != nil {
		return destination{}, fmt.Errorf("%s: %w", scheme, err)
	}
	return destination{scheme: scheme, router: r}, nil
}

// Sets are the names of the URL sets.
func (n *Notifier) Sets() []string {
	if n == nil {
		return nil
	}
	names := []string{}
	for name := range n.sets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Notify sends ev to the URL set named set ("" the default one; Off: nothing) when the
// level allows it. It never blocks.
func (n *Notifier) Notify(set string, ev Event) {
	if n == nil || set == Off || (!ev.Failed && n.cfg.Level < LevelInfo) {
		return
	}
	if set == "" {
		set = DefaultSet
	}
	dests := n.sets[set]
	if len(dests) == 0 {
		return
	}
	if ev.Host == "" {
		ev.Host = n.cfg.Host
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	var msg bytes.Buffer
	if err := n.tmpl.Execute(&msg, ev); err != nil {
		n.log.Error("the notification template failed; sending the default message", "error", err)
		msg.Reset()
		_ = template.Must(template.New("default").Parse(DefaultTemplate)).Execute(&msg, ev)
	}
	text, title := msg.String(), ev.Title()
	for _, d := range dests {
		n.enqueue("notify", func(ctx context.Context) {
			err := n.retry(ctx, func() error {
				params := types.Params{"title": title}
				for _, err := range d.router.Send(text, &params) {
					if err != nil {
						return err
					}
				}
				return nil
			})
			n.outcome("notify", d.scheme, set, err)
		})
	}
}

// enqueue adds a send to the queue, or counts it failed when the queue is full.
func (n *Notifier) enqueue(kind string, f func(context.Context)) {
	select {
	case n.queue <- f:
	default:
		n.log.Warn("too many notifications waiting: one was dropped", "kind", kind)
		n.cfg.Counted(kind, false)
	}
}

func (n *Notifier) retry(ctx context.Context, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = n.cfg.FirstRetry
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, op() },
		backoff.WithBackOff(b), backoff.WithMaxTries(n.cfg.Tries), backoff.WithMaxElapsedTime(5*time.Minute))
	return err
}

func (n *Notifier) outcome(kind, service, set string, err error) {
	n.cfg.Counted(kind, err == nil)
	if err != nil {
		n.log.Warn(kind+" failed; the backup is not affected", "service", service, "set", set, "error", Redact(err.Error(), n.secrets))
	}
}

func (n *Notifier) work() {
	defer close(n.done)
	for {
		select {
		case f := <-n.queue:
			f(n.ctx)
		case <-n.ctx.Done():
			return
		}
	}
}

// Close sends what is queued until ctx ends, then stops.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	drained := make(chan struct{})
	select {
	case n.queue <- func(context.Context) { close(drained) }:
		select {
		case <-drained:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	n.cancel()
	<-n.done
	if len(n.queue) > 0 {
		return fmt.Errorf("%d notifications were not sent before the sidecar stopped", len(n.queue))
	}
	return nil
}

// withSMTPTimeout adds timeout=10s to an smtp:// URL that sets none: shoutrrr v0.10.0 leaves
// the timeout of such a URL at zero, and every e-mail then fails at once ("i/o timeout").
func withSMTPTimeout(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	for k := range q {
		if strings.EqualFold(k, "timeout") {
			return u
		}
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "timeout=10s"
}
