package vault

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeVault answers like Vault for the tests that need an answer the real
// server will not give (sealed, a dropped connection, a login method the
// test cluster lacks). Routes are "METHOD /v1/path"; others get 404.
type fakeVault struct {
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	calls  []fakeCall
}

type fakeCall struct {
	Route string
	Token string
	Body  map[string]any
}

func newFake(t *testing.T, routes map[string]http.HandlerFunc) *fakeVault {
	f := &fakeVault{routes: routes}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	// A fresh connection per request keeps Go's transport from quietly
	// retrying a request on a reused connection the fake hung up on.
	f.srv.Config.SetKeepAlivesEnabled(false)
	t.Cleanup(f.srv.Close)
	fastRetries(t)
	return f
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	if r.Method == http.MethodPost {
		route = "PUT " + r.URL.Path
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{route, r.Header.Get("X-Vault-Token"), body})
	h := f.routes[route]
	f.mu.Unlock()
	if h == nil {
		reply(w, 404, map[string]any{"errors": []string{}})
		return
	}
	h(w, r)
}

// count returns how often route was called.
func (f *fakeVault) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Route == route {
			n++
		}
	}
	return n
}

func (f *fakeVault) callsTo(route string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Route == route {
			out = append(out, c)
		}
	}
	return out
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// answer replies status with body on every call.
func answer(status int, body any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { reply(w, status, body) }
}

// hangUp drops the connection without an answer.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// kvRoutes are what a healthy Vault answers for an empty KV v2 path
// smartcar/demo and a root token.
func kvRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /v1/auth/token/lookup-self": answer(200, map[string]any{
			"data": map[string]any{"ttl": 0, "renewable": false}}),
		"GET /v1/sys/internal/ui/mounts/secret": answer(200, map[string]any{
			"data": map[string]any{"type": "kv", "path": "secret/",
				"options": map[string]any{"version": "2"}}}),
	}
}

// fastRetries shortens the retry waits for the test.
func fastRetries(t *testing.T) {
	lo, hi := minRetryWait, maxRetryWait
	minRetryWait, maxRetryWait = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { minRetryWait, maxRetryWait = lo, hi })
}

// fakeOptions reaches f with a token from VAULT_TOKEN.
func fakeOptions(t *testing.T, f *fakeVault) Options {
	t.Setenv("VAULT_TOKEN", "root-token")
	t.Setenv("VAULT_CACERT", "")
	return Options{Address: f.srv.URL, Path: "smartcar/demo",
		Auth: AuthOptions{Method: "token"}}
}
