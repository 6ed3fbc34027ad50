package consumers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
)

// maxKeyFile bounds how much of a signing key file is read.
const maxKeyFile = 64 << 10

// httpTry checks an http hook and returns a try that posts ev to it,
// signed at the time of that try.
func (r *Runner) httpTry(h config.Hook, ev HookEvent) (tryFunc, error) {
	u, err := checkURL(h.URL, false, "use https")
	if err != nil {
		return nil, err
	}
	key, err := readKey(h.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	timeout := orDuration(h.Timeout.D(), defaultHookTimeout)

	return func(ctx context.Context) (Attempt, string, error) {
		hdr := http.Header{}
		hdr.Set("Content-Type", "application/json")
		hdr.Set(notify.SignatureHeader, notify.Sign(key, r.clock(), body))
		res := r.do(ctx, http.MethodPost, u, hdr, body, timeout)
		if res.err != nil && res.status != 0 && !retryable(res.status) {
			res.err = permanent(res.err)
		}
		return res.attempt(), res.out, res.err
	}, nil
}

// retryable reports whether an HTTP status may change on another try.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout ||
		status == http.StatusTooManyRequests || status >= 500
}

// httpResult is how one request ended.
type httpResult struct {
	outcome Outcome
	status  int
	detail  string // "204 No Content", "connection refused", ...
	out     string // the first maxOutput bytes of the body
	err     error
}

func (h httpResult) attempt() Attempt {
	return Attempt{Outcome: h.outcome, HTTPStatus: h.status, Error: short(h.err)}
}

// do sends one request bounded by timeout and wants a 2xx answer.
func (r *Runner) do(ctx context.Context, method string, u *url.URL, hdr http.Header,
	body []byte, timeout time.Duration) httpResult {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, method, u.String(),
		bytes.NewReader(body))
	if err != nil {
		return httpResult{outcome: OutcomeError, detail: "bad request",
			err: permanent(err)}
	}
	if hdr != nil {
		req.Header = hdr.Clone()
	}
	req.Header.Set("User-Agent", "keyturn")

	resp, err := r.client.Do(req)
	if err != nil {
		return requestFailed(ctx, tctx, err, timeout)
	}
	defer resp.Body.Close()
	head := &headWriter{max: maxOutput}
	// Reading a bounded amount lets the connection be reused without
	// letting a receiver stream forever.
	_, _ = io.Copy(head, io.LimitReader(resp.Body, 64<<10))
	res := httpResult{status: resp.StatusCode, out: head.String(),
		detail: resp.Status}
	if resp.StatusCode/100 == 2 {
		res.outcome = OutcomeOK
		return res
	}
	res.outcome, res.err = OutcomeFailed, errors.New(resp.Status)
	return res
}

// requestFailed describes a request that got no answer. The URL is left
// out: url.Error repeats it whole, query and all.
func requestFailed(ctx, tctx context.Context, err error,
	timeout time.Duration) httpResult {
	if tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("no answer within its %s timeout", timeout)
		return httpResult{outcome: OutcomeTimeout, detail: err.Error(), err: err}
	}
	if ctx.Err() != nil {
		return httpResult{outcome: OutcomeError, detail: ctx.Err().Error(),
			err: ctx.Err()}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return httpResult{outcome: OutcomeError, detail: short(err), err: err}
}

// checkURL parses raw and refuses plain http to anything but this
// machine unless insecureOK: a signed body or a health answer must not
// cross a network in the clear. hint ends the refusal.
func checkURL(raw string, insecureOK bool, hint string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("url is not an http(s) URL")
	}
	if u.Scheme == "http" && !insecureOK && !config.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing url %s: plain http to a remote host; %s",
			shortURL(u), hint)
	}
	return u, nil
}

// shortURL names u without credentials, query or fragment, which may
// hold tokens.
func shortURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// readKey reads a signing key file, without its trailing newline, as
// notify does for webhooks, so one key file serves both.
func readKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("signing_key_file missing")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read signing_key_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read signing_key_file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("signing_key_file %s is empty", path)
	}
	return []byte(s), nil
}
