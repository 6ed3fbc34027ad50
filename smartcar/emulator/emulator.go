package emulator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// TokenLifetime is how long a minted access token stays valid.
const TokenLifetime = time.Hour

// MaxSecrets is how many secrets one application may hold at a time.
const MaxSecrets = 3

// maxRecords bounds the request history so a load test cannot exhaust
// memory; Requests returns at least the last maxRecords records.
const maxRecords = 100_000

// Emulator is an in-memory Smartcar: applications, their secrets, the
// tokens minted with them, and the history of token requests. It is safe
// for concurrent use. The zero value is not usable; call New.
type Emulator struct {
	now     func() time.Time
	rateN   int
	rateWin time.Duration
	handler http.Handler

	mu      sync.Mutex // guards everything below; held only briefly
	apps    map[string]*app
	tokens  map[[32]byte]minted
	sinceGC int
	windows map[string]*window
	records []RequestRecord // a ring once full; nextRec is its oldest
	nextRec int
	faults  Faults
	faulty  atomic.Bool // faults.active(), readable without mu

	srvMu sync.Mutex
	srv   *http.Server
	url   string
}

// minted is what the emulator remembers about a token: never the token
// itself, only its SHA-256, under which it is stored.
type minted struct {
	expiry   time.Time
	clientID string
	secretID string
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now, for secret
// creation times, token expiry and rate-limit windows. Tests pass a fake
// clock to cross the one-hour token lifetime without waiting.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithRateLimit admits at most n token requests per client ID in each
// fixed window; the rest get 429 with Retry-After. n <= 0 turns it off,
// which is the default.
func WithRateLimit(n int, window time.Duration) Option {
	return func(e *Emulator) { e.rateN, e.rateWin = n, window }
}

// New returns an Emulator with no applications.
func New(opts ...Option) *Emulator {
	e := &Emulator{
		now:     time.Now,
		apps:    make(map[string]*app),
		tokens:  make(map[[32]byte]minted),
		windows: make(map[string]*window),
	}
	for _, o := range opts {
		o(e)
	}
	if e.rateWin <= 0 {
		e.rateN = 0
	}
	e.handler = e.routes()
	return e
}

func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", e.serveToken)
	mux.HandleFunc("POST /v1/apps/{client_id}/secrets", e.serveCreate)
	mux.HandleFunc("GET /v1/apps/{client_id}/secrets", e.serveList)
	mux.HandleFunc("DELETE /v1/apps/{client_id}/secrets/{id}", e.serveDelete)
	return mux
}

// Handler returns the emulator's HTTP API, for tests that serve it
// themselves (with httptest, say) instead of calling Start.
func (e *Emulator) Handler() http.Handler { return e.handler }

// Start serves the emulator on addr, which must be a loopback address
// (default "127.0.0.1:0", a free port), and returns its base URL. The
// management API has no authentication, so it must not be reachable
// from other machines.
func (e *Emulator) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.srv != nil {
		return "", errors.New("emulator: already started")
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	e.srv = &http.Server{Handler: e.handler, ReadHeaderTimeout: 10 * time.Second}
	e.url = "http://" + ln.Addr().String()
	go e.srv.Serve(ln)
	return e.url, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("emulator: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("emulator: refusing to listen on %q: not a loopback address", addr)
}

// Close stops serving and drops open connections. State stays readable.
func (e *Emulator) Close() error {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	if e.srv == nil {
		return nil
	}
	err := e.srv.Close()
	e.srv = nil
	return err
}

// URL returns the base URL Start listens on, or "" before Start.
func (e *Emulator) URL() string {
	e.srvMu.Lock()
	defer e.srvMu.Unlock()
	return e.url
}

// TokenURL returns the token endpoint's URL, or "" before Start.
func (e *Emulator) TokenURL() string {
	if u := e.URL(); u != "" {
		return u + "/oauth2/token"
	}
	return ""
}
