package smartcar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The classes Class returns. They are stable: audit records and metrics
// carry them.
const (
	ClassOK             = "ok"
	ClassInvalidClient  = "invalid_client"
	ClassInvalidRequest = "invalid_request"
	ClassRateLimited    = "rate_limited"
	ClassTransient      = "transient"
	ClassOther          = "other"
)

// Sentinel errors for the conditions callers branch on. Test with
// errors.Is; the error Token returns wraps exactly one of them, or none
// for class "other".
var (
	// ErrInvalidClient means Smartcar refused the client credentials: the
	// secret is wrong, or was deleted in the Dashboard, or the client ID is
	// unknown. Only an explicit "invalid_client" error code counts, because
	// keyturn treats this answer as proof that an old secret is dead.
	ErrInvalidClient = errors.New(ClassInvalidClient)

	// ErrInvalidRequest means Smartcar rejected the request as malformed
	// (HTTP 400 with any error code other than invalid_client).
	ErrInvalidRequest = errors.New(ClassInvalidRequest)

	// ErrRateLimited means Smartcar answered 429. The error is a
	// *RateLimitError that says how long to wait, when the server said.
	ErrRateLimited = errors.New(ClassRateLimited)

	// ErrTransient means the request may succeed if retried: a 5xx answer,
	// a timeout, a reset or refused connection, or a 2xx answer that did
	// not carry a usable token.
	ErrTransient = errors.New(ClassTransient)
)

// maxDescription bounds how much of the server's error_description an
// error carries.
const maxDescription = 200

// maxRetryAfter bounds a Retry-After value so that a hostile or broken
// header cannot overflow a time.Duration or park a caller for years.
const maxRetryAfter = 24 * time.Hour

// RequestError is the error Token returns for every failed request. It
// carries what an audit record needs besides the cause.
type RequestError struct {
	// Status is the HTTP status of the answer, or 0 when none arrived.
	Status int
	// Class is one of the Class* constants.
	Class string
	// Latency is the time from sending the request to its outcome.
	Latency time.Duration
	// Err is the cause; it wraps one of the sentinel errors unless Class
	// is "other".
	Err error
}

// Error returns a lowercase chain naming the class and the reason. It
// never contains the client secret, a token or the raw response body.
func (e *RequestError) Error() string {
	return "smartcar: token request: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// RateLimitError is the cause of a 429 answer. It Is ErrRateLimited.
type RateLimitError struct {
	// RetryAfter is how long the server asked the caller to wait, or 0
	// when it sent no usable Retry-After header.
	RetryAfter time.Duration
	// Detail is the server's error description, cut short, or "".
	Detail string
}

// Error says that the request was rate limited and for how long.
func (e *RateLimitError) Error() string {
	s := ClassRateLimited + ": too many token requests"
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	if e.Detail != "" {
		s += fmt.Sprintf(": server said %q", e.Detail)
	}
	return s
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Class returns the class of err: "ok" for nil, else "invalid_client",
// "invalid_request", "rate_limited", "transient" or "other".
func Class(err error) string {
	switch {
	case err == nil:
		return ClassOK
	case errors.Is(err, ErrInvalidClient):
		return ClassInvalidClient
	case errors.Is(err, ErrInvalidRequest):
		return ClassInvalidRequest
	case errors.Is(err, ErrRateLimited):
		return ClassRateLimited
	case errors.Is(err, ErrTransient):
		return ClassTransient
	}
	return ClassOther
}

// answer is what the token endpoint said, reduced to the parts that are
// safe to put in an error.
type answer struct {
	status      int
	code        string // RFC 6749 "error"
	description string // scrubbed and cut
	retryAfter  string // raw Retry-After header
}

// classifyAnswer turns an HTTP answer that carried an error (any status,
// or a 2xx with an "error" code) into a cause wrapping a sentinel.
func classifyAnswer(a answer, now time.Time) error {
	said := ""
	if a.description != "" {
		said = fmt.Sprintf(": server said %q", a.description)
	}
	switch {
	case a.code == "invalid_client":
		return fmt.Errorf("%w: the client secret was refused "+
			"(wrong, or deleted in the Dashboard)%s", ErrInvalidClient, said)
	case a.status == http.StatusTooManyRequests:
		return &RateLimitError{
			RetryAfter: parseRetryAfter(a.retryAfter, now),
			Detail:     a.description,
		}
	case a.status >= 500 || a.status == http.StatusRequestTimeout:
		return fmt.Errorf("%w: server answered %s%s",
			ErrTransient, statusText(a.status), said)
	case a.status == http.StatusBadRequest || a.code == "invalid_request":
		return fmt.Errorf("%w: the token endpoint rejected the request (%s)%s",
			ErrInvalidRequest, codeOrNone(a.code), said)
	}
	return fmt.Errorf("unexpected answer %s (%s)%s",
		statusText(a.status), codeOrNone(a.code), said)
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return strconv.Itoa(status) + " " + strings.ToLower(t)
	}
	return strconv.Itoa(status)
}

func codeOrNone(code string) string {
	if code == "" {
		return "no error code"
	}
	return "error " + strconv.Quote(code)
}

// classifyTransport turns an error that arrived without an HTTP answer
// into a cause. Timeouts and broken connections are transient; a caller
// cancelling its context, a bad URL and the like are "other".
func classifyTransport(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("cancelled: %w", err)
	case isTransientNet(err):
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}

func isTransientNet(err error) bool {
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.As(err, &op), errors.As(err, &dns):
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After header, in seconds or as an
// HTTP-date, relative to now. It returns 0 when the header is absent or
// unusable, and never more than maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter // only overflow fails on digits
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), maxRetryAfter)
}

// scrub removes every occurrence of each secret from s, then cuts it to
// n bytes, so that a server echoing a credential cannot put it in an
// error. Scrubbing comes first so the cut cannot split a secret into a
// prefix that escapes the replacement.
func scrub(s string, n int, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return cut(s, n)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
