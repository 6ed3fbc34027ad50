package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/env"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// fakeSmartcar is a token endpoint on loopback that knows which secrets
// are valid, counts requests and can hold or fail them.
type fakeSmartcar struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu      sync.Mutex
	secrets map[string]bool
	minted  int
	with    map[string]string // token → the secret that minted it
	status  int               // when set, answer this status instead of a token
	retry   string            // Retry-After of a 429
	hold    chan struct{}
}

func newFakeSmartcar(t *testing.T) *fakeSmartcar {
	f := &fakeSmartcar{secrets: map[string]bool{}, with: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSmartcar) tokenURL() string { return f.srv.URL + "/oauth2/token" }

func (f *fakeSmartcar) allow(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[s] = true
}

// mintedWith returns the secret that minted tok.
func (f *fakeSmartcar) mintedWith(tok string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.with[tok]
}

// fail makes every request answer status (0 turns it off).
func (f *fakeSmartcar) fail(status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.retry = status, retryAfter
}

// holdRequests makes requests wait until the returned func is called.
func (f *fakeSmartcar) holdRequests() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = make(chan struct{})
	return sync.OnceFunc(func() { close(f.hold) })
}

func (f *fakeSmartcar) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	hold, status, retry := f.hold, f.status, f.retry
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":"server_error"}`)
		return
	}
	s := r.FormValue("client_secret")
	f.mu.Lock()
	ok := f.secrets[s]
	f.minted++
	tok := fmt.Sprintf("tok-%d", f.minted)
	f.with[tok] = s
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
}

// memAudit is an in-memory audit log that can be made to fail.
type memAudit struct {
	mu   sync.Mutex
	recs []audit.Record
	err  error
}

func (m *memAudit) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return audit.Record{}, m.err
	}
	r.Seq = uint64(len(m.recs) + 1)
	m.recs = append(m.recs, r)
	return r, nil
}

func (m *memAudit) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *memAudit) healthy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, m.err)
	}
	return nil
}

// last returns the newest record.
func (m *memAudit) last() audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[len(m.recs)-1]
}

// kind returns the records of kind k.
func (m *memAudit) kind(k audit.Kind) []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Record
	for _, r := range m.recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// testEpoch is where fake clocks start: a round time, so that metric
// values in tests are exact.
var testEpoch = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: testEpoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// memNotify records the events sent.
type memNotify struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (n *memNotify) Send(_ context.Context, _ []string, ev notify.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.evs = append(n.evs, ev)
}

func (n *memNotify) events() []notify.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notify.Event(nil), n.evs...)
}

// failingBackend is a backend whose List fails, for readiness.
type failingBackend struct{ backends.Backend }

func (failingBackend) List(context.Context) ([]backends.Secret, error) {
	return nil, errors.New("connection refused")
}

func (failingBackend) String() string { return "broken store" }

// testKey is a consumer key and its config entry.
type testKey struct {
	key string
	cfg config.Consumer
}

func newTestKey(t *testing.T, name string, apps ...string) testKey {
	t.Helper()
	key, sum, err := NewConsumerKey()
	if err != nil {
		t.Fatal(err)
	}
	return testKey{key: key, cfg: config.Consumer{Name: name, KeySHA256: sum, Apps: apps,
		Rate: 1000, Burst: 2000}}
}

// harness is a web face on loopback with one app, "demo", whose env
// backend holds the secret "secret-1", and a fake Smartcar.
type harness struct {
	t        *testing.T
	web      *web
	srv      *httptest.Server
	smartcar *fakeSmartcar
	audit    *memAudit
	notify   *memNotify
	clock    *fakeClock
	backend  *env.Backend
	key      testKey
	status   staticStatus
	failures map[string]uint64 // notification failures by channel
}

func newHarness(t *testing.T, consumers ...config.Consumer) *harness {
	t.Helper()
	h := &harness{t: t, smartcar: newFakeSmartcar(t), audit: &memAudit{},
		notify: &memNotify{}, clock: newFakeClock()}
	h.key = newTestKey(t, "fleet", "demo")
	dir := t.TempDir()
	cfg := &config.Config{Listen: "127.0.0.1:0",
		Consumers: append([]config.Consumer{h.key.cfg}, consumers...),
		Apps: []config.App{{Name: "demo", ClientID: "client-demo",
			Owners: []string{"ops"}}}}
	var err error
	h.backend, err = env.New(env.Options{File: filepath.Join(dir, "demo.env"),
		StateDir: filepath.Join(dir, "state"), ClientID: "client-demo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.backend.Init(context.Background(), secret.New("secret-1"),
		h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.smartcar.allow("secret-1")
	bes := map[string]backends.Backend{"demo": h.backend}
	h.web = h.newWeb(cfg, bes)
	h.srv = httptest.NewServer(h.web.routes())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) newWeb(cfg *config.Config, bes map[string]backends.Backend) *web {
	h.t.Helper()
	log := slog.New(slog.DiscardHandler)
	w := newWeb(cfg, Options{Logger: log, Clock: h.clock.Now})
	auth, err := newAuthenticator(cfg.Consumers, h.clock.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	w.auth, w.audit = auth, w.metrics.observe(h.audit)
	tokens := smartcar.NewClient(h.smartcar.tokenURL(), smartcar.WithTimeout(5*time.Second))
	w.broker = newBroker(brokerDeps{Apps: cfg.Apps, Backends: bes, Tokens: tokens,
		Audit: w.audit, Notify: h.notify, Metrics: w.metrics, Clock: h.clock.Now,
		Logger: log})
	w.ready = &readiness{audit: h.audit.healthy, backends: bes, clock: h.clock.Now}
	w.status = &h.status
	w.metrics.watch(scrapeSources{status: w.status, clock: h.clock.Now,
		audit: h.audit.healthy, channels: []string{"ops"},
		failures: func(ch string) uint64 { return h.failures[ch] }, broker: w.broker})
	return w
}

// get sends GET path with the bearer key (none when key is "").
func (h *harness) get(path, key string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return do(h.t, h.srv.Client(), req)
}

func do(t *testing.T, hc *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// staticStatus is a statusSource with fixed answers.
type staticStatus []rotator.CredentialStatus

func (s *staticStatus) Status(context.Context) []rotator.CredentialStatus { return *s }
