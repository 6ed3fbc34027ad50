package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/secret"
)

// vendOK fetches demo's token and fails the test unless it got one.
func (h *harness) vendOK() tokenAnswer {
	h.t.Helper()
	resp, body := h.get("/v1/apps/demo/token", h.key.key)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("vend: %s: %s", resp.Status, body)
	}
	var ta tokenAnswer
	if err := json.Unmarshal([]byte(body), &ta); err != nil {
		h.t.Fatal(err)
	}
	return ta
}

// waitFor spins until cond holds, yielding to other goroutines; it never
// sleeps, and gives up after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestColdStampedeMakesOneUpstreamRequest(t *testing.T) {
	h := newHarness(t)
	release := h.smartcar.holdRequests()
	defer release()

	const n = 1000
	bodies := make([]string, n)
	codes := make([]int, n)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", h.srv.URL+"/v1/apps/demo/token", nil)
			req.Header.Set("Authorization", "Bearer "+h.key.key)
			resp, body := do(t, hc, req)
			codes[i], bodies[i] = resp.StatusCode, body
		})
	}
	waitFor(t, "every request to wait on the upstream one",
		func() bool { return h.web.broker.waiting.Load() == n })
	release()
	wg.Wait()

	if got := h.smartcar.requests.Load(); got != 1 {
		t.Errorf("upstream token requests = %d, want 1", got)
	}
	for i := range n {
		if codes[i] != http.StatusOK || !strings.Contains(bodies[i], `"tok-1"`) {
			t.Fatalf("request %d: %d %s", i, codes[i], bodies[i])
		}
	}
	reqs := h.audit.kind(audit.KindTokenRequest)
	if len(reqs) != 1 {
		t.Errorf("token_request records = %d, want 1", len(reqs))
	} else if r := reqs[0]; r.Outcome != "ok" || r.ErrorClass != "" {
		// A success carries no error class, as the rotator's requests do.
		t.Errorf("token_request outcome %q, error class %q; want ok and none",
			r.Outcome, r.ErrorClass)
	}
	vends := h.audit.kind(audit.KindBrokerVend)
	if len(vends) != n {
		t.Fatalf("broker_vend records = %d, want %d", len(vends), n)
	}
	if string(vends[0].Extra) != `{"cache":"miss"}` {
		t.Errorf("vend extra = %s, want a cache miss", vends[0].Extra)
	}
}

func TestVendAnswerAndAudit(t *testing.T) {
	h := newHarness(t)
	first := h.vendOK()
	second := h.vendOK()
	if first.AccessToken != "tok-1" || first.TokenType != "Bearer" {
		t.Errorf("answer = %+v", first)
	}
	if want := h.clock.Now().Add(time.Hour).UTC(); !first.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", first.ExpiresAt, want)
	}
	if second.AccessToken != first.AccessToken {
		t.Errorf("second vend got %q, want the cached %q", second.AccessToken,
			first.AccessToken)
	}

	tokFP := string(secret.New("tok-1").Fingerprint())
	secFP := string(secret.New("secret-1").Fingerprint())
	type vend struct{ Actor, App, SecretFP, TokenFP, Outcome, Extra string }
	var got []vend
	for _, r := range h.audit.kind(audit.KindBrokerVend) {
		if !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
			t.Errorf("remote addr = %q", r.RemoteAddr)
		}
		got = append(got, vend{r.Actor, r.App, r.SecretFP, r.TokenFP, r.Outcome,
			string(r.Extra)})
	}
	want := []vend{
		{"consumer:fleet", "demo", secFP, tokFP, "ok", `{"cache":"miss"}`},
		{"consumer:fleet", "demo", secFP, tokFP, "ok", `{"cache":"hit"}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("vend records (-want +got):\n%s", diff)
	}
	req := h.audit.kind(audit.KindTokenRequest)
	if len(req) != 1 || req[0].Purpose != audit.PurposeBroker || req[0].TokenFP != tokFP {
		t.Errorf("token requests = %+v", req)
	}
}

func TestPromotionSwitchesToken(t *testing.T) {
	h := newHarness(t)
	if got := h.vendOK().AccessToken; got != "tok-1" {
		t.Fatalf("first token = %q", got)
	}
	ctx := context.Background()
	s2 := secret.New("secret-2")
	h.smartcar.allow("secret-2")
	if err := h.backend.WritePending(ctx, "rot-1", s2, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.backend.Promote(ctx, "rot-1", s2.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	h.web.broker.invalidate("demo")

	if got := h.vendOK().AccessToken; got != "tok-2" {
		t.Errorf("token after promotion = %q, want tok-2", got)
	}
	vends := h.audit.kind(audit.KindBrokerVend)
	if got := vends[len(vends)-1].SecretFP; got != string(s2.Fingerprint()) {
		t.Errorf("vend after promotion names secret %s, want %s", got, s2.Fingerprint())
	}
}

func TestInvalidateDuringFetchDropsOldToken(t *testing.T) {
	h := newHarness(t)
	release := h.smartcar.holdRequests()
	done := make(chan tokenAnswer)
	go func() { done <- h.vendOK() }()
	waitFor(t, "the fetch", func() bool { return h.web.broker.waiting.Load() == 1 })
	h.web.broker.invalidate("demo") // promoted while the old secret was in flight
	release()
	if got := (<-done).AccessToken; got != "tok-1" {
		t.Fatalf("in-flight vend = %q", got)
	}
	if got := h.vendOK().AccessToken; got != "tok-2" {
		t.Errorf("vend after invalidation = %q, want a fresh tok-2", got)
	}
}

func TestRateLimitedUpstreamIsHonoured(t *testing.T) {
	h := newHarness(t)
	h.smartcar.fail(http.StatusTooManyRequests, "120")
	for i := range 2 {
		resp, body := h.get("/v1/apps/demo/token", h.key.key)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("vend %d: %s %s", i, resp.Status, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "120" {
			t.Errorf("vend %d: Retry-After = %q, want 120", i, ra)
		}
	}
	if got := h.smartcar.requests.Load(); got != 1 {
		t.Errorf("upstream requests while told to wait = %d, want 1", got)
	}
	h.smartcar.fail(0, "")
	h.clock.Advance(119 * time.Second)
	h.web.broker.tick(context.Background())
	if got := h.smartcar.requests.Load(); got != 1 {
		t.Errorf("background refresh did not wait for Retry-After: %d requests", got)
	}
	h.clock.Advance(2 * time.Second)
	if got := h.vendOK().AccessToken; got == "" {
		t.Error("no token after Retry-After")
	}
	if got := h.smartcar.requests.Load(); got != 2 {
		t.Errorf("upstream requests = %d, want 2", got)
	}
}

func TestBackgroundRefreshAt80Percent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.vendOK()
	h.clock.Advance(47 * time.Minute)
	h.web.broker.tick(ctx)
	if got := h.smartcar.requests.Load(); got != 1 {
		t.Fatalf("refreshed at 47 minutes: %d requests", got)
	}
	h.clock.Advance(2 * time.Minute)
	h.web.broker.tick(ctx)
	if got := h.smartcar.requests.Load(); got != 2 {
		t.Fatalf("not refreshed at 49 minutes: %d requests", got)
	}
	if got := h.vendOK().AccessToken; got != "tok-2" {
		t.Errorf("vend after refresh = %q, want tok-2", got)
	}
	vends := h.audit.kind(audit.KindBrokerVend)
	if got := string(vends[len(vends)-1].Extra); got != `{"cache":"hit"}` {
		t.Errorf("vend after refresh: %s, want a hit", got)
	}
}

func TestFailingRefreshServesCachedAndAlerts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.vendOK()
	h.smartcar.fail(http.StatusInternalServerError, "")
	h.clock.Advance(49 * time.Minute)
	h.web.broker.tick(ctx)
	h.clock.Advance(2 * time.Second) // past the first backoff
	h.web.broker.tick(ctx)

	if got := h.vendOK().AccessToken; got != "tok-1" {
		t.Errorf("vend while refresh fails = %q, want the cached tok-1", got)
	}
	if diff := cmp.Diff([]brokerState{{app: "demo", failing: true,
		expiry: h.web.broker.apps["demo"].tok.expiry}}, h.web.broker.states(),
		cmp.AllowUnexported(brokerState{})); diff != "" {
		t.Errorf("broker state (-want +got):\n%s", diff)
	}
	evs := h.notify.events()
	if len(evs) != 1 || evs[0].Kind != kindBrokerFailing || evs[0].Resolve {
		t.Fatalf("alerts = %+v, want one broker_refresh_failing", evs)
	}
	if !strings.Contains(evs[0].Detail, "serves the cached token until") {
		t.Errorf("alert detail = %q", evs[0].Detail)
	}

	// 20 seconds before expiry: too close to hand out.
	h.clock.Advance(10*time.Minute + 38*time.Second)
	resp, body := h.get("/v1/apps/demo/token", h.key.key)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "tok-1") {
		t.Errorf("vend of a token about to expire: %s %s", resp.Status, body)
	}

	h.smartcar.fail(0, "")
	h.clock.Advance(time.Minute)
	h.web.broker.tick(ctx)
	evs = h.notify.events()
	if len(evs) != 2 || !evs[1].Resolve {
		t.Errorf("alerts after recovery = %+v, want a resolve", evs)
	}
}

func TestAuditFailureWithholdsToken(t *testing.T) {
	h := newHarness(t)
	h.vendOK()
	h.audit.setErr(errors.New("disk full"))
	resp, body := h.get("/v1/apps/demo/token", h.key.key)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %s, want 503", resp.Status)
	}
	if strings.Contains(body, "tok-1") || !strings.Contains(body, "audit_failed") {
		t.Errorf("body = %s", body)
	}
}

func TestUnrecordedUpstreamTokenIsNotUsed(t *testing.T) {
	h := newHarness(t)
	h.audit.setErr(errors.New("disk full"))
	resp, body := h.get("/v1/apps/demo/token", h.key.key)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "tok-") {
		t.Errorf("vend = %s %s", resp.Status, body)
	}
	if !h.web.broker.apps["demo"].tok.value.IsZero() {
		t.Error("a token whose request was not recorded was cached")
	}
}
