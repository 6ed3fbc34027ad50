package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
)

// brokerFuzz is the listen address's handler with two consumers: fleet,
// allowed app demo, and ops, allowed every app.
type brokerFuzz struct {
	h          http.Handler
	audit      *watchedAudit
	log        *watchedLog
	fleet, ops string // their keys
}

// The consumers' keys are fixed, so that saved inputs keep their meaning.
const (
	fuzzFleetKey = "kt_fuzzFleetKey0123456789abcdefghijklmnopqrst"
	fuzzOpsKey   = "kt_fuzzOpsKey0123456789abcdefghijklmnopqrstuvw"
)

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newBrokerFuzz(tb testing.TB) *brokerFuzz {
	b := &brokerFuzz{audit: &watchedAudit{}, log: &watchedLog{}, fleet: fuzzFleetKey,
		ops: fuzzOpsKey}
	fleetSum, opsSum := sha256hex(b.fleet), sha256hex(b.ops)
	var err error
	cfg := &config.Config{Consumers: []config.Consumer{
		{Name: "fleet", KeySHA256: fleetSum, Apps: []string{"demo"}, Rate: 1e9, Burst: 1e9},
		{Name: "ops", KeySHA256: opsSum, Apps: []string{"*"}, Rate: 1e9, Burst: 1e9}},
		Apps: []config.App{{Name: "demo", ClientID: "client_demo"},
			{Name: "other", ClientID: "client_other"}}}
	log := slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := newWeb(cfg, Options{Logger: log, Clock: time.Now})
	if w.auth, err = newAuthenticator(cfg.Consumers, time.Now); err != nil {
		tb.Fatal(err)
	}
	w.audit = w.metrics.observe(b.audit)
	w.broker = newBroker(brokerDeps{Apps: cfg.Apps, Backends: map[string]backends.Backend{
		"demo": newFuzzBackend(fuzzCurrent), "other": newFuzzBackend(fuzzCurrent)},
		Tokens: refusingSmartcar{current: fuzzCurrent}, Audit: w.audit, Metrics: w.metrics,
		Clock: time.Now, Logger: log})
	w.status = &staticStatus{}
	b.h = w.routes()
	return b
}

// simpleApp matches app names that ServeMux always routes.
var simpleApp = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// FuzzBrokerAuth sends GET /v1/apps/{app}/token and /v1/status with an
// arbitrary Authorization header and app path value. A token leaves only
// for a well-formed bearer header with a configured key, for an app the
// key allows; every refusal is audited once; no key, secret or token is
// logged or audited, and no key is echoed.
func FuzzBrokerAuth(f *testing.F) {
	b := newBrokerFuzz(f)
	f.Add("Bearer "+b.fleet, "demo", false)
	f.Add("bearer  "+b.ops+" ", "other", false)
	f.Add("Bearer "+b.fleet, "other", false)
	f.Add("Bearer "+b.ops, "nope", false)
	f.Add("Basic "+b.fleet, "demo", false)
	f.Add("Bearer", "demo", false)
	f.Add("", "demo", true)
	f.Add("Bearer kt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "a/b", false)
	f.Add("Bearer "+b.fleet, "..", false)
	f.Fuzz(func(t *testing.T, header, app string, status bool) {
		scheme, key, spaced := strings.Cut(header, " ")
		key = strings.TrimSpace(key)
		who := ""
		if header != "" && spaced && strings.EqualFold(scheme, "Bearer") {
			switch key {
			case b.fleet:
				who = "fleet"
			case b.ops:
				who = "ops"
			}
		}
		watch := []string{fuzzCurrent, fuzzAccessToken}
		if strings.HasPrefix(key, "kt_") && len(key) >= 24 {
			watch = append(watch, key)
		}
		b.audit.reset(watch...)
		b.log.reset(watch...)

		path := "/v1/apps/" + url.PathEscape(app) + "/token"
		if status {
			path = "/v1/status"
		}
		req := httptest.NewRequest("GET", path, nil)
		if header != "" {
			req.Header["Authorization"] = []string{header}
		}
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)

		// ServeMux redirects or refuses odd paths (empty, dot and
		// escaped-slash segments) before any handler, in plain text.
		routed := rec.Header().Get("Content-Type") == "application/json"
		if !routed && (status || simpleApp.MatchString(app)) {
			t.Fatalf("%s was not routed to a handler: %d %s", path, rec.Code, rec.Body)
		}
		want := http.StatusOK
		switch {
		case !routed:
			want = rec.Code
		case who == "":
			want = http.StatusUnauthorized
		case status:
		case who == "fleet" && app != "demo":
			want = http.StatusForbidden
		case who == "ops" && app != "demo" && app != "other":
			want = http.StatusNotFound
		}
		if rec.Code != want {
			t.Fatalf("%q for %s answered %d, want %d: %s", header, path, rec.Code, want,
				rec.Body)
		}
		body := rec.Body.String()
		if want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("a 401 without WWW-Authenticate")
		}
		if routed && !json.Valid(rec.Body.Bytes()) {
			t.Errorf("answer %d is not JSON: %q", rec.Code, body)
		}
		if holds(body, watch[2:]) || (want != http.StatusOK && holds(body, watch[:2])) {
			t.Errorf("answer %d gives away a key, secret or token: %s", rec.Code, body)
		}
		all, refused, leak := b.audit.counts()
		if leak != "" {
			t.Errorf("an audit record holds a key, secret or token: %s", leak)
		}
		if leak := b.log.leaked(); leak != "" {
			t.Errorf("a log line holds a key, secret or token: %s", leak)
		}
		switch {
		case routed && want != http.StatusOK && (all != 1 || refused != 1):
			t.Errorf("refusal %d wrote %d audit records (%d refusals), want 1", want, all,
				refused)
		case want == http.StatusOK && refused != 0:
			t.Errorf("a served request audited %d refusals", refused)
		}
	})
}
