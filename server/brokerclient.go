package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

// BrokerToken is an access token handed out by the broker.
type BrokerToken struct {
	Value     secret.Value
	Type      string
	ExpiresAt time.Time
}

// BrokerClient asks a daemon's token broker for access tokens. keyturn
// token is its user; other programs can speak the same plain HTTP.
type BrokerClient struct {
	base string
	key  secret.Value
	hc   *http.Client
}

// NewBrokerClient returns a client for the broker of the daemon cfg
// describes: on its listen address (https when tls is configured), or on
// its Unix socket when listen is "off". base, when not empty, replaces
// the address taken from cfg. An empty key works only on the socket, for
// consumers named by uid.
func NewBrokerClient(cfg *config.Config, base string, key secret.Value) (*BrokerClient,
	error) {
	c := &BrokerClient{key: key, hc: &http.Client{Timeout: time.Minute}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c.hc.Transport = tr
	switch {
	case base != "":
		c.base = base
	case cfg.Listen == "" || cfg.Listen == config.ListenOff:
		c.base = "http://keyturn"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", cfg.Socket)
		}
	default:
		var err error
		if c.base, err = listenURL(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.TLS.CertFile != "" {
		roots, err := trustCert(cfg.TLS.CertFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// listenURL turns the listen address into a URL a local client can
// reach: a wildcard host becomes loopback.
func listenURL(cfg *config.Config) (string, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// trustCert returns the system roots plus the daemon's own certificate,
// so that a self-signed listener is trusted by a client on the same host
// that can read it. An unreadable file leaves the system roots alone.
func trustCert(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return pool, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tls certificate: %w", err)
	}
	pool.AppendCertsFromPEM(data)
	return pool, nil
}

// Token returns an access token for app.
func (c *BrokerClient) Token(ctx context.Context, app string) (BrokerToken, error) {
	req, err := http.NewRequestWithContext(ctx, "GET",
		c.base+"/v1/apps/"+url.PathEscape(app)+"/token", nil)
	if err != nil {
		return BrokerToken{}, err
	}
	if !c.key.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.key.Reveal())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return BrokerToken{}, fmt.Errorf("ask the token broker: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return BrokerToken{}, fmt.Errorf("read the token broker's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return BrokerToken{}, brokerError(resp, data)
	}
	var ta tokenAnswer
	if err := json.Unmarshal(data, &ta); err != nil || ta.AccessToken == "" {
		return BrokerToken{}, errors.New("the token broker's answer holds no token")
	}
	return BrokerToken{Value: secret.New(ta.AccessToken), Type: ta.TokenType,
		ExpiresAt: ta.ExpiresAt}, nil
}

func brokerError(resp *http.Response, data []byte) error {
	ce := &CallError{Status: resp.StatusCode}
	if json.Unmarshal(data, &ce.APIError) != nil || ce.APIError.Error == "" {
		ce.APIError.Error = "token broker answered " + resp.Status
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		ce.Hint = fmt.Sprintf("try again in %s seconds", ra)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		ce.Hint = "check the consumer key: pass --key-file FILE, or set " +
			"KEYTURN_CONSUMER_KEY_FILE; its sha256 must be a consumer's key_sha256"
	}
	return ce
}
