package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

// Options are the dependencies of Build and NewDispatcher; the zero value
// works, and tests replace the clock, the sleeping and the servers.
type Options struct {
	// Logger gets the log channel's lines and delivery problems.
	Logger *slog.Logger
	// HTTPClient posts to Slack, webhooks and PagerDuty. The default
	// refuses redirects.
	HTTPClient *http.Client
	// Clock is the time source for signatures and derived events.
	Clock func() time.Time
	// Backoff is how long to wait before try (2, 3, …); the Dispatcher
	// adds no jitter of its own, so the default includes it.
	Backoff func(try int) time.Duration
	// Sleep waits, or returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnAttempt hears of every delivery attempt, for the audit log. It may
	// be called from several goroutines at once.
	OnAttempt func(Attempt)
	// FailingAfter is how many deliveries in a row a channel must fail
	// before the other channels hear of it; default 1.
	FailingAfter int
	// Retries applies to notifiers that are not Tuned; default 3.
	Retries int
	// Timeout applies to notifiers that are not Tuned; default 10s.
	Timeout time.Duration
	// PagerDutyURL replaces DefaultPagerDutyURL, for tests.
	PagerDutyURL string
	// TLSConfig replaces the email channels' TLS settings, for tests
	// against a server with a self-signed certificate.
	TLSConfig *tls.Config
}

// withDefaults fills in the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.FailingAfter <= 0 {
		o.FailingAfter = 1
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.PagerDutyURL == "" {
		o.PagerDutyURL = DefaultPagerDutyURL
	}
	return o
}

// Build makes one Notifier per channel, keyed by name, reading every
// credential file now so that a missing file fails at start-up. Errors
// name the channel and the file, never a credential.
func Build(chs []config.Channel, opts Options) (map[string]Notifier, error) {
	opts = opts.withDefaults()
	out := make(map[string]Notifier, len(chs))
	var errs []error
	for _, ch := range chs {
		if _, dup := out[ch.Name]; dup {
			errs = append(errs, fmt.Errorf("notify: %s %q: name used twice",
				ch.Type, ch.Name))
			continue
		}
		n, err := build(ch, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: %s %q: %w", ch.Type, ch.Name, err))
			continue
		}
		out[ch.Name] = n
	}
	shareSecrets(out)
	return out, errors.Join(errs...)
}

// shareSecrets lets every channel scrub every channel's credentials from
// its errors: a receiver may echo anything, even what it should not know.
func shareSecrets(ns map[string]Notifier) {
	var all []string
	for _, n := range ns {
		all = append(all, n.(interface{ baseOf() *base }).baseOf().secrets...)
	}
	for _, n := range ns {
		n.(interface{ baseOf() *base }).baseOf().secrets = all
	}
}

// build makes the notifier of one channel.
func build(ch config.Channel, o Options) (Notifier, error) {
	b := base{name: ch.Name, kind: ch.Type, retries: ch.Retries,
		timeout: ch.Timeout.D()}
	if b.retries <= 0 {
		b.retries = o.Retries
	}
	if b.timeout <= 0 {
		b.timeout = o.Timeout
	}
	switch ch.Type {
	case "slack":
		return buildSlack(ch, b, o)
	case "webhook":
		return buildWebhook(ch, b, o)
	case "pagerduty":
		return buildPagerDuty(ch, b, o)
	case "email":
		return buildEmail(ch, b, o)
	case "log":
		return &logChannel{base: b, logger: o.Logger}, nil
	}
	return nil, errors.New("unknown channel type")
}

func buildSlack(ch config.Channel, b base, o Options) (Notifier, error) {
	u, err := channelURL(ch, o)
	if err != nil {
		return nil, err
	}
	// The whole URL is the credential; its path is what must not leak.
	b.secrets = urlSecrets(u)
	return &slack{base: b, url: u, client: o.HTTPClient}, nil
}

func buildWebhook(ch config.Channel, b base, o Options) (Notifier, error) {
	u, err := channelURL(ch, o)
	if err != nil {
		return nil, err
	}
	if ch.SigningKeyFile == "" {
		return nil, errors.New("signing_key_file missing: receivers verify " +
			SignatureHeader + " with it")
	}
	key, err := readCredential("signing_key_file", ch.SigningKeyFile, o.Logger)
	if err != nil {
		return nil, err
	}
	// A receiver may put a token in its URL; hide it like Slack's.
	b.secrets = append(urlSecrets(u), key)
	return &webhook{base: b, url: u, key: []byte(key), client: o.HTTPClient,
		clock: o.Clock}, nil
}

func buildPagerDuty(ch config.Channel, b base, o Options) (Notifier, error) {
	key, err := readCredential("routing_key_file", ch.RoutingKeyFile, o.Logger)
	if err != nil {
		return nil, err
	}
	u, err := parseURL(strings.TrimSuffix(o.PagerDutyURL, "/") + "/v2/enqueue")
	if err != nil {
		return nil, fmt.Errorf("pagerduty url: %w", err)
	}
	b.secrets = []string{key}
	return &pagerDuty{base: b, url: u, routingKey: key, client: o.HTTPClient}, nil
}

func buildEmail(ch config.Channel, b base, o Options) (Notifier, error) {
	e := &email{base: b, cfg: ch.SMTP, tls: o.TLSConfig}
	if e.cfg.TLS == "" {
		e.cfg.TLS = "starttls"
	}
	if e.cfg.Port == 0 {
		e.cfg.Port = 587
	}
	if e.tls == nil {
		e.tls = &tls.Config{ServerName: e.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	if e.cfg.Username != "" {
		if e.cfg.TLS == "none" {
			return nil, errors.New("smtp.username needs tls starttls or tls: " +
				"a password is never sent in the clear")
		}
		pw, err := readCredential("smtp.password_file", e.cfg.PasswordFile, o.Logger)
		if err != nil {
			return nil, err
		}
		e.password = secret.New(pw)
		e.secrets = []string{pw}
	}
	return e, nil
}

// urlSecrets lists the parts of u that may be credentials: the path, its
// long segments (Slack's token is the last one) and the query values.
func urlSecrets(u *url.URL) []string {
	ss := []string{u.EscapedPath(), u.Path, u.RawQuery}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if len(seg) >= 10 {
			ss = append(ss, seg)
		}
	}
	for _, vs := range u.Query() {
		ss = append(ss, vs...)
	}
	return slices.DeleteFunc(ss, func(s string) bool { return len(s) < 8 })
}

// channelURL reads a channel's URL from url or url_file. It never prints
// the URL: for Slack it is a credential.
func channelURL(ch config.Channel, o Options) (*url.URL, error) {
	raw, field := ch.URL, "url"
	if ch.URLFile != "" {
		s, err := readCredential("url_file", ch.URLFile, o.Logger)
		if err != nil {
			return nil, err
		}
		raw, field = s, "url_file "+ch.URLFile
	}
	if raw == "" {
		return nil, errors.New("url or url_file missing")
	}
	u, err := parseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return u, nil
}

// readCredential reads a file holding one credential, trimming the
// trailing newline editors add. Errors name the field and the file.
func readCredential(field, path string, log *slog.Logger) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s missing", field)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", field, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", field, path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s %s is empty", field, path)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("credential file is readable by others", "file", path,
			"mode", fi.Mode().Perm().String())
	}
	return s, nil
}
