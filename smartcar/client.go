package smartcar

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyturn/keyturn/secret"
)

// DefaultTokenURL is Smartcar's token endpoint.
const DefaultTokenURL = "https://iam.smartcar.com/oauth2/token"

// DefaultTimeout bounds one token request unless WithTimeout says
// otherwise.
const DefaultTimeout = 10 * time.Second

// DefaultUserAgent is sent with every token request unless WithUserAgent
// says otherwise.
const DefaultUserAgent = "keyturn"

// Client requests access tokens with the client credentials grant. It is
// safe for concurrent use. Every call to Token is a real request: nothing
// is cached, because keyturn uses the answer as evidence.
type Client struct {
	tokenURL  string
	hc        *http.Client
	timeout   time.Duration
	userAgent string
	now       func() time.Time // for IssuedAt, Expiry and Retry-After dates
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send requests through hc. Its
// CheckRedirect is ignored: the Client never follows a redirect, so that
// a client secret is never re-sent to another address.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each token request to d (default DefaultTimeout). A
// zero or negative d leaves only the caller's context as a bound.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header of token requests.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// NewClient returns a Client for the token endpoint at tokenURL, or at
// DefaultTokenURL when tokenURL is empty.
func NewClient(tokenURL string, opts ...Option) *Client {
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	c := &Client{
		tokenURL:  tokenURL,
		hc:        &http.Client{Transport: http.DefaultTransport},
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
		now:       time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// TokenURL returns the token endpoint the Client talks to.
func (c *Client) TokenURL() string { return c.tokenURL }

// Token is an access token and what is known about the request that
// minted it.
type Token struct {
	// Value is the access token.
	Value secret.Value
	// Type is the token type, "Bearer" when the server named none.
	Type string
	// Expiry is IssuedAt plus the server's expires_in, or zero when the
	// server sent none. Counting from the moment the request was sent
	// makes it no later than the server's own expiry.
	Expiry time.Time
	// IssuedAt is when the request was sent.
	IssuedAt time.Time
	// Latency is the time from sending the request to reading the answer.
	Latency time.Duration
	// Status is the HTTP status of the answer.
	Status int
}

// Fingerprint returns the loggable name of the access token.
func (t Token) Fingerprint() secret.Fingerprint { return t.Value.Fingerprint() }

// Token asks the token endpoint for an access token for clientID, sending
// the credentials in the form body. Every failure is a *RequestError
// whose cause wraps one of the sentinel errors (see Class).
func (c *Client) Token(ctx context.Context, clientID string,
	clientSecret secret.Value) (Token, error) {
	if err := checkCredentials(clientID, clientSecret); err != nil {
		return Token{}, &RequestError{Class: Class(err), Err: err}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}

	cp := &capture{userAgent: c.userAgent}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.httpClient(cp))
	cfg := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret.Reveal(),
		TokenURL:     c.tokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}

	// Config.Token builds a fresh TokenSource on every call, so this is
	// always a real request and never a cached token.
	issued, start := c.now(), time.Now()
	tok, err := cfg.Token(ctx)
	latency := time.Since(start)
	if err != nil {
		cause := c.cause(err, cp, clientSecret.Reveal())
		return Token{}, &RequestError{
			Status: cp.status, Class: Class(cause), Latency: latency, Err: cause,
		}
	}
	return Token{
		Value:    secret.New(tok.AccessToken),
		Type:     tok.Type(),
		Expiry:   expiry(issued, tok),
		IssuedAt: issued,
		Latency:  latency,
		Status:   cp.status,
	}, nil
}

func checkCredentials(clientID string, clientSecret secret.Value) error {
	switch {
	case clientID == "":
		return fmt.Errorf("%w: no client id given, nothing sent", ErrInvalidRequest)
	case clientSecret.IsZero():
		return fmt.Errorf("%w: no client secret given, nothing sent", ErrInvalidRequest)
	}
	return nil
}

// httpClient returns a copy of the configured client that records the
// answer in cp and never follows redirects.
func (c *Client) httpClient(cp *capture) *http.Client {
	hc := *c.hc
	cp.base = hc.Transport
	if cp.base == nil {
		cp.base = http.DefaultTransport
	}
	hc.Transport = cp
	hc.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &hc
}

// cause turns what x/oauth2 returned into an error wrapping a sentinel.
// It never uses the text of an *oauth2.RetrieveError, which quotes the
// raw body when the answer carries no error code.
func (c *Client) cause(err error, cp *capture, clientSecret string) error {
	var rerr *oauth2.RetrieveError
	switch {
	case cp.bodyErr != nil:
		// x/oauth2 reports a failed body read as text only.
		if errors.Is(cp.bodyErr, context.Canceled) {
			return fmt.Errorf("cancelled while reading the answer: %w", cp.bodyErr)
		}
		return fmt.Errorf("%w: reading the answer: %w", ErrTransient, cp.bodyErr)
	case errors.As(err, &rerr) && rerr.Response != nil:
		return classifyAnswer(answer{
			status:      rerr.Response.StatusCode,
			code:        scrub(rerr.ErrorCode, 40, clientSecret),
			description: scrub(rerr.ErrorDescription, maxDescription, clientSecret),
			retryAfter:  rerr.Response.Header.Get("Retry-After"),
		}, c.now())
	case cp.status >= 200 && cp.status < 300:
		// The answer arrived but x/oauth2 found no token in it.
		ct := scrub(cp.header.Get("Content-Type"), 60, clientSecret)
		return fmt.Errorf("%w: the %s answer carried no usable token "+
			"(content-type %q, %d bytes)", ErrTransient, statusText(cp.status), ct,
			cp.bodyLen)
	}
	return classifyTransport(err)
}

// expiry counts the server's expires_in from issued. x/oauth2 drops
// ExpiresIn in the client credentials flow, so it is read from the raw
// answer, where JSON gives a float64 and a form body an int64 or string.
func expiry(issued time.Time, tok *oauth2.Token) time.Time {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if !(secs > 0) { // also rejects NaN
		return time.Time{}
	}
	secs = min(secs, math.MaxInt32)
	return issued.Add(time.Duration(secs) * time.Second)
}
