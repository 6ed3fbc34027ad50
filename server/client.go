package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
)

// Client talks to a running daemon over its Unix socket. The CLI is its
// only user.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a Client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	// Submit and confirm-deleted wait for real token requests, which
	// retry; give them room but not forever.
	return &Client{socket: socket, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// CallError is a failed call with what the daemon said.
type CallError struct {
	Status int
	APIError
}

func (e *CallError) Error() string { return e.APIError.Error }

// ErrDaemonDown means nothing answers on the socket.
var ErrDaemonDown = errors.New("the keyturn daemon is not running")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://keyturn"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && isDialError(ue.Err) {
			return fmt.Errorf("%w (socket %s)", ErrDaemonDown, c.socket)
		}
		return fmt.Errorf("call daemon: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read daemon answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		ce := &CallError{Status: resp.StatusCode}
		if json.Unmarshal(data, &ce.APIError) != nil || ce.APIError.Error == "" {
			ce.APIError.Error = fmt.Sprintf("daemon answered %s", resp.Status)
		}
		return ce
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Status returns every credential's status.
func (c *Client) Status(ctx context.Context) ([]rotator.CredentialStatus, error) {
	var out []rotator.CredentialStatus
	return out, c.do(ctx, "GET", "/v1/status", nil, &out)
}

// Rotation returns app's running rotation, or nil.
func (c *Client) Rotation(ctx context.Context, app string) (*rotator.Rotation, error) {
	var out *rotator.Rotation
	return out, c.do(ctx, "GET", "/v1/apps/"+url.PathEscape(app)+"/rotation", nil, &out)
}

func (c *Client) action(ctx context.Context, app, verb string, body any) (*rotator.Rotation,
	error) {
	var out *rotator.Rotation
	err := c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(app)+"/"+verb, body, &out)
	return out, err
}

// Rotate starts a rotation.
func (c *Client) Rotate(ctx context.Context, app, reason string) (*rotator.Rotation, error) {
	return c.action(ctx, app, "rotate", actionBody{Reason: reason})
}

// Submit hands over a new secret.
func (c *Client) Submit(ctx context.Context, app string, v secret.Value) (*rotator.Rotation,
	error) {
	return c.action(ctx, app, "submit", actionBody{Secret: v.Reveal()})
}

// ConfirmDeleted says the old secret was deleted in the Dashboard.
func (c *Client) ConfirmDeleted(ctx context.Context, app string) (*rotator.Rotation, error) {
	return c.action(ctx, app, "confirm-deleted", nil)
}

// ConfirmUpdated says hand-managed consumers use the new secret.
func (c *Client) ConfirmUpdated(ctx context.Context, app string) (*rotator.Rotation, error) {
	return c.action(ctx, app, "confirm-updated", nil)
}

// Resume promotes a rolled-back rotation again.
func (c *Client) Resume(ctx context.Context, app string) (*rotator.Rotation, error) {
	return c.action(ctx, app, "resume", nil)
}

// Abort stops a rotation that has not promoted.
func (c *Client) Abort(ctx context.Context, app, reason string) (*rotator.Rotation, error) {
	return c.action(ctx, app, "abort", actionBody{Reason: reason})
}

// Check makes a token request with app's current secret.
func (c *Client) Check(ctx context.Context, app string) (rotator.CheckResult, error) {
	var out rotator.CheckResult
	err := c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(app)+"/check", nil, &out)
	return out, err
}

// Emergency starts the compromise playbook.
func (c *Client) Emergency(ctx context.Context, app string,
	req EmergencyRequest) (*rotator.Rotation, error) {
	return c.action(ctx, app, "emergency", req)
}

// TestChannel asks the daemon to send a test message on a channel.
func (c *Client) TestChannel(ctx context.Context, channel string) error {
	return c.do(ctx, "POST", "/v1/notify/"+url.PathEscape(channel)+"/test", nil, nil)
}
