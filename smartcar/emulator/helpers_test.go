package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start serves a new emulator on loopback for the length of the test.
func start(t *testing.T, opts ...Option) (*Emulator, *fakeClock) {
	t.Helper()
	clock := newClock()
	e := New(append([]Option{WithClock(clock.Now)}, opts...)...)
	if _, err := e.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, clock
}

// answer is an HTTP answer with its JSON body decoded.
type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	json.Unmarshal(raw, &a.Body)
	return a
}

func formRequest(t *testing.T, method, u string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func tokenForm(clientID, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"},
		"client_id": {clientID}, "client_secret": {secret}}
}

// mint asks e for a token and returns the answer.
func mint(t *testing.T, e *Emulator, clientID, secret string) answer {
	t.Helper()
	return do(t, formRequest(t, "POST", e.TokenURL(), tokenForm(clientID, secret)))
}

func mustCreate(t *testing.T, e *Emulator, clientID string) (id, secret string) {
	t.Helper()
	id, secret, _, err := e.CreateSecret(clientID)
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}
