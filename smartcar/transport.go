package smartcar

import (
	"io"
	"net/http"
)

// capture is a per-request RoundTripper that remembers what x/oauth2
// does not hand back: the status and headers of a successful answer,
// the size of the body, and an error met while reading it. One capture
// serves exactly one Token call, so it needs no lock.
type capture struct {
	base      http.RoundTripper
	userAgent string

	status  int
	header  http.Header
	bodyLen int64
	bodyErr error
}

// RoundTrip sets the User-Agent, sends req and wraps the answer's body.
func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.userAgent != "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.status = resp.StatusCode
	c.header = resp.Header
	resp.Body = &countingBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

// countingBody records how much of the body was read and the first read
// error other than io.EOF, which x/oauth2 reports only as text.
type countingBody struct {
	io.ReadCloser
	c *capture
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.bodyLen += int64(n)
	if err != nil && err != io.EOF && b.c.bodyErr == nil {
		b.c.bodyErr = err
	}
	return n, err
}
