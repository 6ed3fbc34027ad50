package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/config"
)

func TestNewConsumerKey(t *testing.T) {
	key, sum, err := NewConsumerKey()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(key))
	if sum != hex.EncodeToString(want[:]) {
		t.Errorf("sha256hex %s does not match the key", sum)
	}
	if !strings.HasPrefix(key, "kt_") || len(key) < 40 {
		t.Errorf("key %q is not a kt_ key of 32 random bytes", key)
	}
	other, _, _ := NewConsumerKey()
	if other == key {
		t.Error("two keys are equal")
	}
}

// refusalRecord is what a test checks of an audited refusal.
type refusalRecord struct {
	Kind       audit.Kind
	Actor      string
	App        string
	Outcome    string
	ErrorClass string
	HTTPStatus int
}

func TestRefusalsAreAudited(t *testing.T) {
	other := newTestKey(t, "billing", "other-app")
	all := newTestKey(t, "ops", "*")
	revoked, _, _ := NewConsumerKey() // never configured, or removed since
	h := newHarness(t, other.cfg, all.cfg)
	tests := []struct {
		name, path, auth string
		want             refusalRecord
	}{
		{"no key", "/v1/apps/demo/token", "",
			refusalRecord{audit.KindBrokerVend, "unknown", "demo", "refused",
				"unauthenticated", 401}},
		{"revoked key", "/v1/apps/demo/token", "Bearer " + revoked,
			refusalRecord{audit.KindBrokerVend, "unknown", "demo", "refused",
				"unauthenticated", 401}},
		{"basic auth", "/v1/apps/demo/token", "Basic " + h.key.key,
			refusalRecord{audit.KindBrokerVend, "unknown", "demo", "refused",
				"unauthenticated", 401}},
		{"app not allowed", "/v1/apps/demo/token", "Bearer " + other.key,
			refusalRecord{audit.KindBrokerVend, "consumer:billing", "demo", "refused",
				"forbidden", 403}},
		{"unknown app", "/v1/apps/nope/token", "Bearer " + all.key,
			refusalRecord{audit.KindBrokerVend, "consumer:ops", "nope", "refused",
				"unknown_app", 404}},
		{"status without key", "/v1/status", "",
			refusalRecord{audit.KindOperatorAction, "unknown", "", "refused",
				"unauthenticated", 401}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.srv.URL+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, body := do(t, h.srv.Client(), req)
			if resp.StatusCode != tt.want.HTTPStatus {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.want.HTTPStatus,
					body)
			}
			r := h.audit.last()
			got := refusalRecord{r.Kind, r.Actor, r.App, r.Outcome, r.ErrorClass,
				r.HTTPStatus}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}
			if strings.Contains(r.Detail, "kt_") || strings.Contains(body, "tok-") {
				t.Errorf("a key or token leaked: detail %q, body %s", r.Detail, body)
			}
		})
	}
	if got := h.smartcar.requests.Load(); got != 0 {
		t.Errorf("refused requests reached smartcar %d times", got)
	}
}

func TestRemovedConsumerIsRefused(t *testing.T) {
	h := newHarness(t)
	h.vendOK()
	cfg := &config.Config{Apps: h.web.cfg.Apps} // the consumer was removed
	w := h.newWeb(cfg, h.web.broker.deps.Backends)
	req, _ := http.NewRequest("GET", "/v1/apps/demo/token", nil)
	req.Header.Set("Authorization", "Bearer "+h.key.key)
	c, why, err := w.auth.caller(req)
	if c != nil || err == nil || why != "unknown or revoked key" {
		t.Errorf("caller = %v, %q, %v; want a refusal", c, why, err)
	}
}

func TestConsumerRateLimit(t *testing.T) {
	slow := newTestKey(t, "slow", "demo")
	slow.cfg.Rate, slow.cfg.Burst = 1, 2
	h := newHarness(t, slow.cfg)
	var got []int
	for range 3 {
		resp, _ := h.get("/v1/apps/demo/token", slow.key)
		got = append(got, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			if ra := resp.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After = %q, want 1", ra)
			}
		}
	}
	h.clock.Advance(time.Second)
	resp, _ := h.get("/v1/apps/demo/token", slow.key)
	got = append(got, resp.StatusCode)
	if diff := cmp.Diff([]int{200, 200, 429, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	var limited int
	for _, r := range h.audit.kind(audit.KindBrokerVend) {
		if r.ErrorClass == "rate_limited" && r.Actor == "consumer:slow" {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("audited rate-limit refusals = %d, want 1", limited)
	}
}

func TestSocketPeerByUID(t *testing.T) {
	me := config.Consumer{Name: "local", UIDs: []int{os.Getuid()}, Apps: []string{"demo"},
		Rate: 100, Burst: 100}
	tests := []struct {
		name      string
		consumers []config.Consumer
		want      int
	}{
		{"listed uid", []config.Consumer{me}, http.StatusOK},
		{"unlisted uid", nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.consumers...)
			path := filepath.Join(t.TempDir(), "k.sock")
			ln, err := ListenSocket(path)
			if err != nil {
				t.Fatal(err)
			}
			srv := newServer(h.web.socketHandler(http.NotFoundHandler()), time.Minute,
				h.web.log)
			srv.ConnContext = withConn
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			hc := &http.Client{Transport: &http.Transport{DialContext: func(
				ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			}}}
			req, _ := http.NewRequest("GET", "http://keyturn/v1/apps/demo/token", nil)
			resp, body := do(t, hc, req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %s, want %d: %s", resp.Status, tt.want, body)
			}
			vends := h.audit.kind(audit.KindBrokerVend)
			if ra := vends[len(vends)-1].RemoteAddr; !strings.HasPrefix(ra, "unix:uid=") {
				t.Errorf("remote addr = %q, want the peer's uid", ra)
			}
		})
	}
}
