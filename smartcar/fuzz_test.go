package smartcar

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
)

// fakeAnswer is a RoundTripper that answers every request with one
// canned response, so the fuzzer reaches the parsing path without
// sockets.
type fakeAnswer struct {
	status                  int
	contentType, retryAfter string
	body                    []byte
}

func (f fakeAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", f.contentType)
	h.Set("Retry-After", f.retryAfter)
	return &http.Response{
		StatusCode: f.status, Header: h, Request: r,
		Body: io.NopCloser(bytes.NewReader(f.body)),
	}, nil
}

func FuzzTokenResponse(f *testing.F) {
	f.Add(200, "application/json", "", []byte(okBody))
	f.Add(401, "application/json", "", []byte(
		`{"error":"invalid_client","error_description":"`+canarySecret+`"}`))
	f.Add(400, "application/json", "", []byte(`{"error":"`+canarySecret+`"}`))
	f.Add(429, "text/plain", "120", []byte("error=slow&error_description=x"))
	f.Add(429, "application/json", "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{}`))
	f.Add(500, "text/html", "", []byte(canarySecret))
	f.Add(200, "application/x-www-form-urlencoded", canarySecret,
		[]byte("access_token=x&expires_in=1e400"))
	f.Add(200, "application/json", "", []byte(`{"access_token":1,"expires_in":"x"}`))
	f.Add(200, canarySecret, "", []byte(`{"expires_in":-1}`))

	f.Fuzz(func(t *testing.T, status int, ct, retry string, body []byte) {
		fa := fakeAnswer{100 + abs(status%500), ct, retry, body}
		c := newTestClient("http://smartcar.test/oauth2/token",
			WithHTTPClient(&http.Client{Transport: fa}))
		tok, err := c.Token(t.Context(), testClientID, secret.New(canarySecret))
		if err == nil {
			if tok.Value.IsZero() || fa.status/100 != 2 {
				t.Fatalf("success with status %d and token empty=%v",
					fa.status, tok.Value.IsZero())
			}
			return
		}
		var re *RequestError
		if !errors.As(err, &re) || re.Class != Class(err) {
			t.Fatalf("err %T %v is not a consistent *RequestError", err, err)
		}
		if strings.Contains(err.Error(), canarySecret) {
			t.Fatalf("error leaks the secret: %s", err)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
