package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// base is what every notifier Build makes shares: its name, its limits,
// and the credentials that must never show up in what it reports.
type base struct {
	name    string
	kind    string // slack, webhook, email, pagerduty, log
	retries int
	timeout time.Duration
	secrets []string
}

func (b *base) Name() string           { return b.name }
func (b *base) baseOf() *base          { return b }
func (b *base) Retries() int           { return b.retries }
func (b *base) Timeout() time.Duration { return b.timeout }

// errorf makes an error that names the channel and holds none of its
// credentials, whatever the wrapped error says.
func (b *base) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg := err.Error()
	for _, s := range b.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	prefix := fmt.Sprintf("notify: %s %q: ", b.kind, b.name)
	if msg == err.Error() {
		return &channelError{msg: prefix + msg, err: err}
	}
	// The cause said a credential; keep only its class.
	return &channelError{msg: prefix + msg, err: classOnly(err)}
}

// channelError carries a scrubbed message while keeping the cause's
// class (permanent or not, Retry-After) for the Dispatcher.
type channelError struct {
	msg string
	err error
}

func (e *channelError) Error() string { return e.msg }
func (e *channelError) Unwrap() error { return e.err }

// classOnly keeps what the Dispatcher inspects and drops the text.
func classOnly(err error) error {
	var se *statusError
	if errors.As(err, &se) {
		return &statusError{code: se.code, retryAfter: se.retryAfter}
	}
	if isPermanent(err) {
		return permanent(errors.New("redacted cause"))
	}
	return nil
}

// statusError is an HTTP answer that was not the one expected.
type statusError struct {
	code       int
	status     string
	body       string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	if e.body == "" {
		return e.status
	}
	return e.status + ": " + e.body
}

// permanentError marks a failure that trying again cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }

// isPermanent reports whether err is not worth another try: a refused
// request (4xx but 408 and 429) or a marked failure.
func isPermanent(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 400 && se.code < 500 &&
			se.code != http.StatusRequestTimeout && se.code != http.StatusTooManyRequests
	}
	return false
}

// retryAfter returns how long the receiver asked us to wait, if it did.
func retryAfter(err error) time.Duration {
	var se *statusError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// postJSON sends body to u and wants one of the ok statuses back. Errors
// name only the URL's scheme and host: a Slack webhook's path is its key.
func postJSON(ctx context.Context, c *http.Client, u *url.URL, body []byte,
	header http.Header, ok ...int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(),
		bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post %s: %w", hostOnly(u), stripURL(err))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyturn")

	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", hostOnly(u), stripURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	for _, code := range ok {
		if resp.StatusCode == code {
			return nil
		}
	}
	return fmt.Errorf("post: %w", &statusError{
		code:       resp.StatusCode,
		status:     resp.Status,
		body:       oneLine(string(snippet), 200),
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
	})
}

// hostOnly prints a URL as scheme://host, the part that is not a secret.
func hostOnly(u *url.URL) string { return u.Scheme + "://" + u.Host }

// stripURL drops the URL that net/http puts in its errors, keeping the
// cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseRetryAfter reads a Retry-After header in seconds.
// Limitation: the HTTP-date form is ignored (the backoff applies instead),
// because Slack and PagerDuty send seconds.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// oneLine squeezes s onto one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// defaultHTTPClient refuses redirects: a signed body must not be replayed
// to wherever a receiver points.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// parseURL checks a channel URL without ever printing it.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("not an http(s) URL")
	}
	return u, nil
}
