package reliability

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/server"
)

// consumerKey is a broker key, its SHA-256 and the config line that
// admits it.
type consumerKey struct{ key, sum, line string }

func newConsumerKey(t *testing.T, name, apps, extra string) consumerKey {
	t.Helper()
	key, sum, err := server.NewConsumerKey()
	if err != nil {
		t.Fatal(err)
	}
	suiteCanary.watch(key)
	return consumerKey{key, sum, fmt.Sprintf("  - {name: %s, key_sha256: %s, apps: %s%s}\n",
		name, sum, apps, extra)}
}

// answer is what a request got, as the table compares it.
type answer struct {
	Status     int
	Code       string
	RetryAfter bool
	Refusals   int // audit records of refusals it added
}

// TestAuthHTTP knocks on every endpoint of the listen address with no
// key, a wrong key, a malformed header, another consumer's key and too
// many requests. Every refusal is answered with the right status and
// recorded in the audit log once; /metrics and the health checks answer
// anyone, by design, and hold no secret.
func TestAuthHTTP(t *testing.T) {
	t.Parallel()
	fleet := newConsumerKey(t, "fleet", "[demo]", "")
	other := newConsumerKey(t, "other", "[other]", "")
	slow := newConsumerKey(t, "slow", "[demo]", ", rate: 0.001, burst: 1")
	r := newRig(t, rigOptions{apps: []string{"demo", "other"}, mode: "broker",
		consumers: "consumers:\n" + fleet.line + other.line + slow.line})
	addr := r.start().httpAddr(t)

	do := func(method, path, auth string) answer {
		t.Helper()
		before := len(r.auditRecords())
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		suiteCanary.scan("answer of "+path, body)
		var e server.APIError
		json.Unmarshal(body, &e)
		a := answer{Status: resp.StatusCode, Code: e.Code,
			RetryAfter: resp.Header.Get("Retry-After") != ""}
		for _, rec := range r.auditRecords()[before:] {
			if rec.Outcome == "refused" && rec.HTTPStatus == resp.StatusCode {
				a.Refusals++
			}
		}
		return a
	}
	bearer := func(k consumerKey) string { return "Bearer " + k.key }
	tests := []struct {
		name, method, path, auth string
		want                     answer
	}{
		{"token without credentials", "GET", "/v1/apps/demo/token", "",
			answer{401, "unauthenticated", false, 1}},
		{"token with a wrong key", "GET", "/v1/apps/demo/token",
			"Bearer kt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			answer{401, "unauthenticated", false, 1}},
		{"token with basic auth", "GET", "/v1/apps/demo/token", "Basic Zm9vOmJhcg==",
			answer{401, "unauthenticated", false, 1}},
		{"token with an empty bearer", "GET", "/v1/apps/demo/token", "Bearer ",
			answer{401, "unauthenticated", false, 1}},
		{"token with the key's hash", "GET", "/v1/apps/demo/token",
			"Bearer " + fleet.sum,
			answer{401, "unauthenticated", false, 1}},
		{"token for another consumer's app", "GET", "/v1/apps/demo/token", bearer(other),
			answer{403, "forbidden", false, 1}},
		{"token for an unknown app", "GET", "/v1/apps/nope/token", bearer(fleet),
			answer{403, "forbidden", false, 1}},
		{"token", "GET", "/v1/apps/demo/token", bearer(fleet), answer{200, "", false, 0}},
		{"status without credentials", "GET", "/v1/status", "",
			answer{401, "unauthenticated", false, 1}},
		{"status with a wrong key", "GET", "/v1/status", "Bearer nope",
			answer{401, "unauthenticated", false, 1}},
		{"status", "GET", "/v1/status", bearer(other), answer{200, "", false, 0}},
		{"token within the rate limit", "GET", "/v1/apps/demo/token", bearer(slow),
			answer{200, "", false, 0}},
		{"token over the rate limit", "GET", "/v1/apps/demo/token", bearer(slow),
			answer{429, "rate_limited", true, 1}},
		{"token by POST", "POST", "/v1/apps/demo/token", bearer(fleet),
			answer{405, "", false, 0}},
		{"metrics, open by design", "GET", "/metrics", "", answer{200, "", false, 0}},
		{"healthz, open by design", "GET", "/healthz", "", answer{200, "", false, 0}},
		{"readyz, open by design", "GET", "/readyz", "", answer{200, "", false, 0}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, do(tt.method, tt.path, tt.auth)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	r.scrape(addr)

	// The consumer "other" sees only its own app in /v1/status.
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/status", nil)
	req.Header.Set("Authorization", bearer(other))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st []credStatus
	json.NewDecoder(resp.Body).Decode(&st)
	if len(st) != 1 || st[0].App != "other" {
		t.Errorf("status for consumer other lists %+v, want only app other", st)
	}
	for _, rec := range r.auditRecords() {
		if rec.Outcome == "refused" && rec.RemoteAddr == "" {
			t.Errorf("refusal %d does not say where it came from", rec.Seq)
		}
	}
}

// TestAuthWebhookReplay takes a webhook keyturn really sent and replays
// it to notify.VerifySignature as a receiver would: late, altered, or
// checked with another key, it is refused.
func TestAuthWebhookReplay(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.start()
	if res := r.kt("", "notify", "test", "hook"); res.code != 0 {
		t.Fatalf("notify test: %v", res)
	}
	body, sig, at := r.rc.last()
	if body == nil {
		t.Fatal("the receiver got nothing")
	}
	key := []byte(hookKey)
	altered := append([]byte(nil), body...)
	altered[len(altered)/2] ^= 1
	tests := []struct {
		name string
		key  []byte
		sig  string
		body []byte
		now  time.Time
	}{
		{"as delivered", key, sig, body, at},
		{"replayed a minute later", key, sig, body, at.Add(time.Minute)},
		{"replayed six minutes later", key, sig, body, at.Add(6 * time.Minute)},
		{"replayed with a clock six minutes slow", key, sig, body, at.Add(-6 * time.Minute)},
		{"with an altered body", key, sig, altered, at},
		{"checked with another key", []byte("another-key"), sig, body, at},
		{"with the time rewritten", key, "t=" + fmt.Sprint(at.Unix()+1) + sig[len(
			fmt.Sprint(at.Unix()))+2:], body, at},
		{"without a signature", key, "", body, at},
	}
	got := map[string]string{}
	for _, tt := range tests {
		got[tt.name] = verdict(notify.VerifySignature(tt.key, tt.sig, tt.body, tt.now,
			notify.DefaultSignatureTolerance))
	}
	want := map[string]string{
		"as delivered": "accepted",
		// Limitation: a replay inside the tolerance passes the signature
		// check; receivers drop it by its event id, as notify.Event says.
		"replayed a minute later":                "accepted",
		"replayed six minutes later":             "expired",
		"replayed with a clock six minutes slow": "expired",
		"with an altered body":                   "mismatch",
		"checked with another key":               "mismatch",
		"with the time rewritten":                "mismatch",
		"without a signature":                    "malformed",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signature checks (-want +got):\n%s", diff)
	}
	var sends int
	for _, rec := range r.auditRecords() {
		if rec.Kind == audit.KindNotification && rec.Step == "test" {
			sends++
		}
	}
	if sends != 1 {
		t.Errorf("%d test deliveries audited, want 1", sends)
	}
}

func verdict(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, notify.ErrSignatureExpired):
		return "expired"
	case errors.Is(err, notify.ErrSignatureMismatch):
		return "mismatch"
	case errors.Is(err, notify.ErrSignatureFormat):
		return "malformed"
	}
	return err.Error()
}
